# Sets W32Time to start automatically, starts it and asks for a resync; saves the previous start mode.
$svc = Get-CimInstance -ClassName Win32_Service -Filter "Name='W32Time'"
$previous = [ordered]@{ start_mode = [string]$svc.StartMode; state = [string]$svc.State }
[void](Save-OsirisState 'WIN-TIME-001' $previous)
Set-Service -Name W32Time -StartupType Automatic
if ($svc.State -ne 'Running') { Start-Service -Name W32Time }
& w32tm.exe /resync /force | Out-Null
[ordered]@{ changed = $true; previous = $previous }
