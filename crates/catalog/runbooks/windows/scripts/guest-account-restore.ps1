# Re-enables the Guest account if the remediation found it enabled.
$saved = Get-OsirisState 'WIN-ACCT-001'
if ($null -eq $saved) { [ordered]@{ changed = $false; reason = 'nothing saved' }; return }
if ($saved.enabled) { Enable-LocalUser -SID ([string]$saved.sid) }
Clear-OsirisState 'WIN-ACCT-001'
[ordered]@{ changed = [bool]$saved.enabled; restored = $saved }
