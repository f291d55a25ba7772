# Puts each subcategory back to the setting value saved by the remediation.
$saved = Get-OsirisState 'WIN-AUDIT-001'
if ($null -eq $saved) { [ordered]@{ changed = $false; reason = 'nothing saved' }; return }
foreach ($entry in $saved.PSObject.Properties) {
    $value = [int]$entry.Value
    $success = $(if ($value -band 1) { 'enable' } else { 'disable' })
    $failure = $(if ($value -band 2) { 'enable' } else { 'disable' })
    & auditpol.exe /set "/subcategory:$($entry.Name)" "/success:$success" "/failure:$failure" | Out-Null
    if ($LASTEXITCODE -ne 0) { throw "auditpol /set $($entry.Name) failed with exit code $LASTEXITCODE" }
}
Clear-OsirisState 'WIN-AUDIT-001'
[ordered]@{ changed = $true; restored = $saved }
