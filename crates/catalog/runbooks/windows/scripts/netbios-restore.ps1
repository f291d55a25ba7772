# Restores each adapter's NetBIOS option saved by the remediation.
$saved = Get-OsirisState 'WIN-NET-002'
if ($null -eq $saved) { [ordered]@{ changed = $false; reason = 'nothing saved' }; return }
foreach ($entry in @($saved)) {
    $a = Get-CimInstance -ClassName Win32_NetworkAdapterConfiguration -Filter "Index=$([int]$entry.index)"
    if ($null -ne $a) { [void](Invoke-CimMethod -InputObject $a -MethodName SetTcpipNetbios -Arguments @{ TcpipNetbiosOptions = [uint32]$entry.tcpip_netbios_options }) }
}
Clear-OsirisState 'WIN-NET-002'
[ordered]@{ changed = $true; restored = @($saved) }
