# Turns Defender real-time monitoring back on; saves the previous preference, then updates signatures.
$p = Get-MpPreference
[void](Save-OsirisState 'WIN-WSDEF-001' ([ordered]@{ disable_realtime_monitoring = [bool]$p.DisableRealtimeMonitoring }))
Set-MpPreference -DisableRealtimeMonitoring $false
Update-MpSignature
[ordered]@{ changed = [bool]$p.DisableRealtimeMonitoring; previous = [ordered]@{ disable_realtime_monitoring = [bool]$p.DisableRealtimeMonitoring } }
