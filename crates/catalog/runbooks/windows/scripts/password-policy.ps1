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
    minimum_password_length = Get-Policy 'MinimumPasswordLength'
    maximum_password_age_days = Get-Policy 'MaximumPasswordAge'
    password_complexity = ((Get-Policy 'PasswordComplexity') -eq 1)
    password_history_size = Get-Policy 'PasswordHistorySize'
}
