# Requires NLA for RDP; the previous value is saved for rollback.
Set-OsirisRegistry 'WIN-RDP-001' @(@{ Path = 'HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server\WinStations\RDP-Tcp'; Name = 'UserAuthentication'; Value = 1; Type = 'DWord' })
