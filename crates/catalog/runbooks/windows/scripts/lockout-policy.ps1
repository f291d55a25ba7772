# Account policy from `secedit /export` ([System Access] keys are fixed names, values are numbers).
$file = Join-Path $env:TEMP ("osiris-secpol-" + [guid]::NewGuid().ToString('N') + '.inf')
& secedit.exe /export /cfg $file /areas SECURITYPOLICY /quiet | Out-Null
if ($LASTEXITCODE -ne 0) { throw "secedit /export failed with exit code $LASTEXITCODE" }
$values = @{}
foreach ($line in (Get-Content -LiteralPath $file -Encoding Unicode)) {
    if ($line -match '^\s*(\w+)\s*=\s*(-?\d+)\s*$') { $values[$Matches[1]] = [int]$Matches[2] }
}
Remove-Item -LiteralPath $file -Force
function Get-Policy([string]$Name) { if ($values.ContainsKey($Name)) { return $values[$Name] } return 0 }
[ordered]@{
    lockout_bad_count = Get-Policy 'LockoutBadCount'
    lockout_duration_minutes = Get-Policy 'LockoutDuration'
    reset_lockout_count_minutes = Get-Policy 'ResetLockoutCount'
}
