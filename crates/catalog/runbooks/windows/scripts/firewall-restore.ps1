# Restores the firewall profile settings saved by the remediation.
$saved = Get-OsirisState 'WIN-FW-001'
if ($null -eq $saved) { [ordered]@{ changed = $false; reason = 'nothing saved' }; return }
foreach ($p in @($saved)) {
    Set-NetFirewallProfile -Profile $p.name -Enabled $p.enabled -DefaultInboundAction $p.default_inbound_action
}
Clear-OsirisState 'WIN-FW-001'
[ordered]@{ changed = $true; restored = @($saved) }
