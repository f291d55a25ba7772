# Firewall profiles from MSFT_NetFirewallProfile (root/StandardCimv2); enums are numbers, not text.
# Enabled: 1 = true. DefaultInboundAction: 0 = NotConfigured (block), 2 = Allow, 4 = Block.
$profiles = @(Get-CimInstance -Namespace root/StandardCimv2 -ClassName MSFT_NetFirewallProfile | ForEach-Object {
    [ordered]@{ name = [string]$_.Name; enabled = ([int]$_.Enabled -eq 1); default_inbound_action = [int]$_.DefaultInboundAction }
})
[ordered]@{
    profiles = $profiles
    disabled_profiles = @($profiles | Where-Object { -not $_.enabled } | ForEach-Object { $_.name })
    inbound_allowing_profiles = @($profiles | Where-Object { $_.default_inbound_action -eq 2 } | ForEach-Object { $_.name })
}
