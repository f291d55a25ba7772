# Machine inactivity limit (Policies\System InactivityTimeoutSecs; absent or 0 = never locks).
$v = Get-OsirisRegValue 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System' 'InactivityTimeoutSecs'
$secs = $(if ($null -eq $v) { 0 } else { [int]$v })
[ordered]@{ configured = ($secs -gt 0); inactivity_timeout_secs = $secs }
