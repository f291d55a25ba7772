# Legacy protocols in SCHANNEL (Protocols\<name>\Server: Enabled 0 = off). An absent key means the
# OS default, which is "enabled" for TLS 1.0/1.1 on Server 2019 and earlier; SSL 3.0 is off since 2016.
$root = 'HKLM:\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols'
$protocols = @()
foreach ($name in @('SSL 3.0', 'TLS 1.0', 'TLS 1.1')) {
    $enabled = Get-OsirisRegValue "$root\$name\Server" 'Enabled'
    $on = $(if ($null -eq $enabled) { $name -ne 'SSL 3.0' } else { [int64]$enabled -ne 0 })
    $protocols += [ordered]@{ name = $name; configured = ($null -ne $enabled); enabled = $on }
}
[ordered]@{ protocols = @($protocols); enabled_legacy = @($protocols | Where-Object { $_.enabled } | ForEach-Object { $_.name }) }
