# Restores SMB server EnableSMB1Protocol saved by the remediation.
$saved = Get-OsirisState 'WIN-SMB-002'
if ($null -eq $saved) { [ordered]@{ changed = $false; reason = 'nothing saved' }; return }
Set-SmbServerConfiguration -EnableSMB1Protocol ([bool]$saved.value) -Force
Clear-OsirisState 'WIN-SMB-002'
[ordered]@{ changed = $true; restored = [ordered]@{ enablesmb1protocol = [bool]$saved.value } }
