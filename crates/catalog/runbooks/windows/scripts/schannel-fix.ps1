# Turns SSL 3.0, TLS 1.0 and TLS 1.1 off for the server side (needs a reboot to take effect).
$root = 'HKLM:\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols'
$values = @()
foreach ($name in @('SSL 3.0', 'TLS 1.0', 'TLS 1.1')) {
    $values += @{ Path = "$root\$name\Server"; Name = 'Enabled'; Value = 0; Type = 'DWord' }
    $values += @{ Path = "$root\$name\Server"; Name = 'DisabledByDefault'; Value = 1; Type = 'DWord' }
}
Set-OsirisRegistry 'WIN-TLS-001' $values
