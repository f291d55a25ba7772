# Stops and disables the Print Spooler on a DC; saves its start mode and state.
$svc = Get-CimInstance -ClassName Win32_Service -Filter "Name='Spooler'"
$previous = [ordered]@{ start_mode = [string]$svc.StartMode; state = [string]$svc.State }
[void](Save-OsirisState 'WIN-SPOOL-001' $previous)
Stop-Service -Name Spooler -Force
Set-Service -Name Spooler -StartupType Disabled
[ordered]@{ changed = ($previous.start_mode -ne 'Disabled' -or $previous.state -ne 'Stopped'); previous = $previous }
