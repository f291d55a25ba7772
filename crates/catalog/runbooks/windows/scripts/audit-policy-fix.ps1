# Adds the missing success/failure auditing per subcategory GUID; saves the previous setting values.
$required = Get-OsirisAuditRequired
$settings = Get-OsirisAuditSettings
$previous = [ordered]@{}
foreach ($guid in $required.Keys) {
    $have = 0
    if ($settings.ContainsKey($guid)) { $have = $settings[$guid] }
    $previous[$guid] = $have
}
[void](Save-OsirisState 'WIN-AUDIT-001' $previous)
$changed = @()
foreach ($guid in $required.Keys) {
    $want = $previous[$guid] -bor $required[$guid].bits
    if ($want -ne $previous[$guid]) {
        $success = $(if ($want -band 1) { 'enable' } else { 'disable' })
        $failure = $(if ($want -band 2) { 'enable' } else { 'disable' })
        & auditpol.exe /set "/subcategory:$guid" "/success:$success" "/failure:$failure" | Out-Null
        if ($LASTEXITCODE -ne 0) { throw "auditpol /set $guid failed with exit code $LASTEXITCODE" }
        $changed += $required[$guid].key
    }
}
[ordered]@{ changed = ($changed.Count -gt 0); subcategories = @($changed); previous = $previous }
