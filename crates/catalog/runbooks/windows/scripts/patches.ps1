# Installed updates from Win32_QuickFixEngineering; InstalledOn is a DateTime (no text date parsing).
$qfe = @(Get-CimInstance -ClassName Win32_QuickFixEngineering | Where-Object { $null -ne $_.InstalledOn } | Sort-Object InstalledOn -Descending)
if ($qfe.Count -eq 0) {
    [ordered]@{ n_updates = 0; latest_hotfix_id = $null; latest_installed_on = $null; latest_age_days = 99999 }
    return
}
[ordered]@{
    n_updates = $qfe.Count
    latest_hotfix_id = [string]$qfe[0].HotFixID
    latest_installed_on = ConvertTo-OsirisUtc $qfe[0].InstalledOn
    latest_age_days = Get-OsirisAgeDays $qfe[0].InstalledOn
}
