# NetBIOS over TCP/IP per IP-enabled adapter (Win32_NetworkAdapterConfiguration.TcpipNetbiosOptions:
# 0 = from DHCP, 1 = enabled, 2 = disabled).
$adapters = @(Get-CimInstance -ClassName Win32_NetworkAdapterConfiguration -Filter "IPEnabled=True" | ForEach-Object {
    [ordered]@{ index = [int]$_.Index; description = [string]$_.Description; tcpip_netbios_options = [int]$_.TcpipNetbiosOptions }
})
[ordered]@{
    adapters = $adapters
    netbios_enabled_adapters = @($adapters | Where-Object { $_.tcpip_netbios_options -ne 2 } | ForEach-Object { $_.index })
}
