# Turns every firewall profile on with inbound blocked by default; saves the previous settings.
$before = @(Get-NetFirewallProfile | ForEach-Object {
    [ordered]@{ name = [string]$_.Name; enabled = [string]$_.Enabled; default_inbound_action = [string]$_.DefaultInboundAction }
})
[void](Save-OsirisState 'WIN-WSFW-001' $before)
Set-NetFirewallProfile -Profile Domain, Private, Public -Enabled True -DefaultInboundAction Block
[ordered]@{ changed = $true; previous = $before }
