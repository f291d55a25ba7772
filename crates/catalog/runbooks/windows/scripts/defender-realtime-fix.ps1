# Turns Defender real-time monitoring back on; saves the previous preference.
$p = Get-MpPreference
[void](Save-OsirisState 'WIN-DEF-001' ([ordered]@{ disable_realtime_monitoring = [bool]$p.DisableRealtimeMonitoring }))
Set-MpPreference -DisableRealtimeMonitoring $false
[ordered]@{ changed = [bool]$p.DisableRealtimeMonitoring; previous = [ordered]@{ disable_realtime_monitoring = [bool]$p.DisableRealtimeMonitoring } }
