# Windows Update service start mode (Win32_Service) and the Automatic Updates policy (NoAutoUpdate, AUOptions).
$svc = Get-CimInstance -ClassName Win32_Service -Filter "Name='wuauserv'"
$au = 'HKLM:\SOFTWARE\Policies\Microsoft\Windows\WindowsUpdate\AU'
$noAuto = Get-OsirisRegValue $au 'NoAutoUpdate'
$auOptions = Get-OsirisRegValue $au 'AUOptions'
[ordered]@{
    service_start_mode = [string]$svc.StartMode
    service_state = [string]$svc.State
    no_auto_update = $(if ($null -eq $noAuto) { 0 } else { [int]$noAuto })
    au_options = $(if ($null -eq $auOptions) { $null } else { [int]$auOptions })
}
