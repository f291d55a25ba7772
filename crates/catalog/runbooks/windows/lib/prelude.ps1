# osiris PowerShell prelude: helpers shared by every Windows runbook body.
# The scan engine puts this once at the top of a batch; bodies call these functions.
# PowerShell 5.1 compatible; no code is ever built from data here.

# Where remediations keep what they changed, so rollback restores exactly that.
$OsirisRootKey = 'HKLM:\SOFTWARE\OsirisCare'
$OsirisRollbackRoot = 'HKLM:\SOFTWARE\OsirisCare\Rollback'
# Only SYSTEM and BUILTIN\Administrators, full control, inherited by every subkey; not inheriting
# from HKLM\SOFTWARE (where Users may read), so no other account reads or plants rollback state.
$OsirisKeySddl = 'D:P(A;OICI;KA;;;SY)(A;OICI;KA;;;BA)'

# Creates the OsirisCare key if needed and (re)applies its access list; called before every write.
function Protect-OsirisKey {
    if (-not (Test-Path -LiteralPath $OsirisRootKey)) { New-Item -Path $OsirisRootKey -Force | Out-Null }
    $acl = Get-Acl -LiteralPath $OsirisRootKey
    $acl.SetSecurityDescriptorSddlForm($OsirisKeySddl, [System.Security.AccessControl.AccessControlSections]::Access)
    Set-Acl -LiteralPath $OsirisRootKey -AclObject $acl
}

# A registry value, or $null when the key or value is absent.
function Get-OsirisRegValue([string]$Path, [string]$Name) {
    $item = Get-ItemProperty -LiteralPath $Path -Name $Name -ErrorAction SilentlyContinue
    if ($null -eq $item) { return $null }
    return $item.$Name
}

# Whole days between a DateTime and now, computed on the host in UTC.
function Get-OsirisAgeDays($When) {
    if ($null -eq $When) { return $null }
    return [int][math]::Floor(([DateTime]::UtcNow - ([DateTime]$When).ToUniversalTime()).TotalDays)
}

# ISO 8601 UTC text for a DateTime ($null stays $null).
function ConvertTo-OsirisUtc($When) {
    if ($null -eq $When) { return $null }
    return ([DateTime]$When).ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ')
}

# Splits a `;`/`,` separated parameter into trimmed, non-empty items.
function Split-OsirisList([string]$Text) {
    if ([string]::IsNullOrWhiteSpace($Text)) { return @() }
    return @($Text -split '[;,]' | ForEach-Object { $_.Trim() } | Where-Object { $_ -ne '' })
}

# Saves a remediation's previous state (any object, stored as JSON) unless one is already saved,
# so a second remediation never overwrites the original values.
function Save-OsirisState([string]$Id, $State) {
    Protect-OsirisKey
    $key = Join-Path $OsirisRollbackRoot $Id
    if (Test-Path -LiteralPath $key) { return $false }
    New-Item -Path $key -Force | Out-Null
    $json = ConvertTo-Json -InputObject $State -Depth 6 -Compress
    New-ItemProperty -LiteralPath $key -Name 'State' -Value $json -PropertyType String -Force | Out-Null
    return $true
}

# The saved state of a remediation, or $null when nothing was saved.
function Get-OsirisState([string]$Id) {
    $json = Get-OsirisRegValue (Join-Path $OsirisRollbackRoot $Id) 'State'
    if ($null -eq $json) { return $null }
    return ConvertFrom-Json $json
}

# Forgets a remediation's saved state once rollback has restored it.
function Clear-OsirisState([string]$Id) {
    $key = Join-Path $OsirisRollbackRoot $Id
    if (Test-Path -LiteralPath $key) { Remove-Item -LiteralPath $key -Recurse -Force }
}

# Sets registry values after saving what they were (absent values are remembered as absent).
# Each entry: @{ Path = 'HKLM:\...'; Name = '...'; Value = 1; Type = 'DWord' }.
function Set-OsirisRegistry([string]$Id, [object[]]$Values) {
    $previous = @()
    $changed = $false
    foreach ($v in $Values) {
        $old = Get-OsirisRegValue $v.Path $v.Name
        $previous += [ordered]@{ path = $v.Path; name = $v.Name; existed = ($null -ne $old); value = $old; type = $v.Type }
        if ($null -eq $old -or "$old" -ne "$($v.Value)") { $changed = $true }
    }
    [void](Save-OsirisState $Id $previous)
    foreach ($v in $Values) {
        if (-not (Test-Path -LiteralPath $v.Path)) { New-Item -Path $v.Path -Force | Out-Null }
        New-ItemProperty -LiteralPath $v.Path -Name $v.Name -Value $v.Value -PropertyType $v.Type -Force | Out-Null
    }
    return [ordered]@{ changed = $changed; previous = @($previous) }
}

# Puts back exactly the registry values Set-OsirisRegistry saved, then forgets them.
function Restore-OsirisRegistry([string]$Id) {
    $saved = Get-OsirisState $Id
    if ($null -eq $saved) { return [ordered]@{ changed = $false; reason = 'nothing saved' } }
    $restored = @()
    foreach ($v in @($saved)) {
        if ($v.existed) {
            if (-not (Test-Path -LiteralPath $v.path)) { New-Item -Path $v.path -Force | Out-Null }
            New-ItemProperty -LiteralPath $v.path -Name $v.name -Value $v.value -PropertyType $v.type -Force | Out-Null
        } else {
            Remove-ItemProperty -LiteralPath $v.path -Name $v.name -ErrorAction SilentlyContinue
        }
        $restored += [ordered]@{ path = $v.path; name = $v.name; existed = [bool]$v.existed; value = $v.value }
    }
    Clear-OsirisState $Id
    return [ordered]@{ changed = $true; restored = @($restored) }
}

# Advanced audit policy subcategories that HIPAA audit controls need, by GUID, with the
# Setting Value bits required (1 success, 2 failure, 3 both); shared by detect and fix.
function Get-OsirisAuditRequired {
    return [ordered]@{
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
# Account policy from `secedit /export`: [System Access] keys are fixed names and values are
# numbers, so nothing localised is parsed. Returns name -> number; a missing key reads as 0.
function Get-OsirisAccountPolicy {
    $file = Join-Path $env:TEMP ("osiris-secpol-" + [guid]::NewGuid().ToString('N') + '.inf')
    & secedit.exe /export /cfg $file /areas SECURITYPOLICY /quiet | Out-Null
    if ($LASTEXITCODE -ne 0) { throw "secedit /export failed with exit code $LASTEXITCODE" }
    $values = @{}
    foreach ($line in (Get-Content -LiteralPath $file -Encoding Unicode)) {
        if ($line -match '^\s*(\w+)\s*=\s*(-?\d+)\s*$') { $values[$Matches[1]] = [int]$Matches[2] }
    }
    Remove-Item -LiteralPath $file -Force
    return $values
}
function Get-OsirisPolicyValue($Policy, [string]$Name) {
    if ($Policy.ContainsKey($Name)) { return $Policy[$Name] }
    return 0
}
