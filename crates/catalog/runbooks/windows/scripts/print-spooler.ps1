# Print Spooler on a domain controller (Win32_ComputerSystem.DomainRole 4/5 = DC; elsewhere not applicable).
$role = [int](Get-CimInstance -ClassName Win32_ComputerSystem).DomainRole
if ($role -lt 4) { [ordered]@{ applicable = $false; reason = "not a domain controller (DomainRole $role)" }; return }
$svc = Get-CimInstance -ClassName Win32_Service -Filter "Name='Spooler'"
[ordered]@{ domain_role = $role; start_mode = [string]$svc.StartMode; state = [string]$svc.State }
