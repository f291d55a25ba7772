# IPv4/IPv6 DNS servers of connected interfaces (Get-DnsClientServerAddress) against the allowlist;
# with an empty allowlist only private, loopback and link-local resolvers are expected.
$allowed = @(Split-OsirisList ([string]$Params.allowed_servers))
function Test-Private([string]$ip) {
    return ($ip -match '^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|127\.|169\.254\.)' -or $ip -match '^(::1$|fe80:|f[cd][0-9a-f]{2}:)')
}
$up = @(Get-NetAdapter | Where-Object { $_.Status -eq 'Up' } | ForEach-Object { $_.ifIndex })
$servers = @()
foreach ($entry in @(Get-DnsClientServerAddress | Where-Object { $up -contains $_.InterfaceIndex })) {
    foreach ($ip in @($entry.ServerAddresses)) {
        if ($null -ne $ip -and $servers -notcontains $ip) { $servers += [string]$ip }
    }
}
$unexpected = @($servers | Where-Object {
    if ($allowed.Count -gt 0) { $allowed -notcontains $_ } else { -not (Test-Private $_) }
})
[ordered]@{ servers = @($servers); n_servers = $servers.Count; unexpected = $unexpected }
