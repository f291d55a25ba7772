# Restores SMB server RequireSecuritySignature saved by the remediation.
$saved = Get-OsirisState 'WIN-SMB-001'
if ($null -eq $saved) { [ordered]@{ changed = $false; reason = 'nothing saved' }; return }
Set-SmbServerConfiguration -RequireSecuritySignature ([bool]$saved.value) -Force
Clear-OsirisState 'WIN-SMB-001'
[ordered]@{ changed = $true; restored = [ordered]@{ requiresecuritysignature = [bool]$saved.value } }
