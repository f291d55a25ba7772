# Newest recovery point: Volume Shadow Copies (Win32_ShadowCopy.InstallDate) and, where Windows
# Server Backup is installed, Get-WBSummary's LastSuccessfulBackupTime.
$shadow = @(Get-CimInstance -ClassName Win32_ShadowCopy | Sort-Object InstallDate -Descending | Select-Object -First 1)
$newest = $null
if ($shadow.Count -gt 0) { $newest = $shadow[0].InstallDate }
$wb = $null
if (Get-Command -Name Get-WBSummary -ErrorAction SilentlyContinue) {
    $wb = (Get-WBSummary).LastSuccessfulBackupTime
    if ($null -ne $wb -and $wb.Year -gt 1900 -and ($null -eq $newest -or $wb -gt $newest)) { $newest = $wb }
}
[ordered]@{
    has_backup = ($null -ne $newest)
    n_shadow_copies = @(Get-CimInstance -ClassName Win32_ShadowCopy).Count
    newest_backup = ConvertTo-OsirisUtc $newest
    backup_age_days = $(if ($null -eq $newest) { 99999 } else { Get-OsirisAgeDays $newest })
}
