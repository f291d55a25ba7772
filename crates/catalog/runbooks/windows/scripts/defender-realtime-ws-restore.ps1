# Restores the real-time monitoring preference saved by the remediation.
$saved = Get-OsirisState 'WIN-WSDEF-001'
if ($null -eq $saved) { [ordered]@{ changed = $false; reason = 'nothing saved' }; return }
Set-MpPreference -DisableRealtimeMonitoring ([bool]$saved.disable_realtime_monitoring)
Clear-OsirisState 'WIN-WSDEF-001'
[ordered]@{ changed = $true; restored = [ordered]@{ disable_realtime_monitoring = [bool]$saved.disable_realtime_monitoring } }
