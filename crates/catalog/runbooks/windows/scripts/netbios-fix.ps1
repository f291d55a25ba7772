# Disables NetBIOS over TCP/IP on every IP-enabled adapter; saves each adapter's previous option.
$previous = @()
foreach ($a in @(Get-CimInstance -ClassName Win32_NetworkAdapterConfiguration -Filter "IPEnabled=True")) {
    $previous += [ordered]@{ index = [int]$a.Index; tcpip_netbios_options = [int]$a.TcpipNetbiosOptions }
}
[void](Save-OsirisState 'WIN-NET-002' $previous)
foreach ($a in @(Get-CimInstance -ClassName Win32_NetworkAdapterConfiguration -Filter "IPEnabled=True")) {
    $r = Invoke-CimMethod -InputObject $a -MethodName SetTcpipNetbios -Arguments @{ TcpipNetbiosOptions = [uint32]2 }
    if ($r.ReturnValue -ne 0) { throw "SetTcpipNetbios on adapter $($a.Index) returned $($r.ReturnValue)" }
}
[ordered]@{ changed = $true; previous = @($previous) }
