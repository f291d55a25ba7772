# Adds the missing success/failure auditing per subcategory GUID; saves the previous setting values.
$required = [ordered]@{
    '{0CCE923F-69AE-11D9-BED3-505054503030}' = @{ key = 'credential_validation'; bits = 3 }
    '{0CCE9215-69AE-11D9-BED3-505054503030}' = @{ key = 'logon'; bits = 3 }
    '{0CCE9217-69AE-11D9-BED3-505054503030}' = @{ key = 'account_lockout'; bits = 2 }
    '{0CCE921B-69AE-11D9-BED3-505054503030}' = @{ key = 'special_logon'; bits = 1 }
    '{0CCE9235-69AE-11D9-BED3-505054503030}' = @{ key = 'user_account_management'; bits = 3 }
    '{0CCE9236-69AE-11D9-BED3-505054503030}' = @{ key = 'computer_account_management'; bits = 1 }
    '{0CCE9237-69AE-11D9-BED3-505054503030}' = @{ key = 'security_group_management'; bits = 1 }
    '{0CCE922F-69AE-11D9-BED3-505054503030}' = @{ key = 'audit_policy_change'; bits = 1 }
    '{0CCE9228-69AE-11D9-BED3-505054503030}' = @{ key = 'sensitive_privilege_use'; bits = 3 }
}
# `auditpol /backup` writes CSV whose last column, Setting Value, is a number (1 success, 2 failure, 3 both);
# columns are read by position and subcategories by GUID, so nothing localised is parsed.
function Get-OsirisAuditSettings {
    $file = Join-Path $env:TEMP ("osiris-auditpol-" + [guid]::NewGuid().ToString('N') + '.csv')
    & auditpol.exe /backup "/file:$file" | Out-Null
    if ($LASTEXITCODE -ne 0) { throw "auditpol /backup failed with exit code $LASTEXITCODE" }
    $rows = @(Import-Csv -LiteralPath $file -Header 'machine', 'target', 'subcategory', 'guid', 'inclusion', 'exclusion', 'value' | Select-Object -Skip 1)
    Remove-Item -LiteralPath $file -Force
    $settings = @{}
    foreach ($row in $rows) {
        if ($row.guid -match '^\{[0-9A-Fa-f-]{36}\}$') { $settings[$row.guid.ToUpperInvariant()] = [int]$row.value }
    }
    return $settings
}
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
