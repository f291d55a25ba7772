# Account policy (Get-OsirisAccountPolicy in the prelude reads `secedit /export`).
$policy = Get-OsirisAccountPolicy
[ordered]@{
    minimum_password_length = Get-OsirisPolicyValue $policy 'MinimumPasswordLength'
    maximum_password_age_days = Get-OsirisPolicyValue $policy 'MaximumPasswordAge'
    password_complexity = ((Get-OsirisPolicyValue $policy 'PasswordComplexity') -eq 1)
    password_history_size = Get-OsirisPolicyValue $policy 'PasswordHistorySize'
}
