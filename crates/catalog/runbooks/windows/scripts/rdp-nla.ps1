# RDP Network Level Authentication: RDP-Tcp UserAuthentication (1 = required; absent means the OS default, required).
$key = 'HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server\WinStations\RDP-Tcp'
[ordered]@{
    user_authentication = $(if ($null -eq ($v = Get-OsirisRegValue $key 'UserAuthentication')) { 1 } else { [int]$v })
    security_layer = $(if ($null -eq ($v = Get-OsirisRegValue $key 'SecurityLayer')) { 2 } else { [int]$v })
}
