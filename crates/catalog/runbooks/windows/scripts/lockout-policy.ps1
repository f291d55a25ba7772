# Account policy (Get-OsirisAccountPolicy in the prelude reads `secedit /export`).
$policy = Get-OsirisAccountPolicy
[ordered]@{
    lockout_bad_count = Get-OsirisPolicyValue $policy 'LockoutBadCount'
    lockout_duration_minutes = Get-OsirisPolicyValue $policy 'LockoutDuration'
    reset_lockout_count_minutes = Get-OsirisPolicyValue $policy 'ResetLockoutCount'
}
