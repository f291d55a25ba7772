# Event Log service state (Win32_Service) and the Security log's maximum size (Get-WinEvent -ListLog).
$svc = Get-CimInstance -ClassName Win32_Service -Filter "Name='EventLog'"
$log = Get-WinEvent -ListLog Security
[ordered]@{
    service_state = [string]$svc.State
    service_start_mode = [string]$svc.StartMode
    security_log_max_mb = [int][math]::Floor($log.MaximumSizeInBytes / 1MB)
    security_log_mode = [string]$log.LogMode
}
