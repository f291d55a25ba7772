# Raises the Security log maximum size (registry MaxSize, bytes) to the parameter and starts the service.
$mb = [int]$Params.min_security_log_mb
$res = Set-OsirisRegistry 'WIN-EVT-001' @(@{ Path = 'HKLM:\SYSTEM\CurrentControlSet\Services\EventLog\Security'; Name = 'MaxSize'; Value = ($mb * 1MB); Type = 'DWord' })
$svc = Get-Service -Name EventLog
if ($svc.Status -ne 'Running') { Start-Service -Name EventLog; $res.changed = $true }
$res
