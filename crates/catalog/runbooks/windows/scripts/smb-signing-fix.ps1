# Sets SMB server RequireSecuritySignature to $true; saves the previous value.
$old = [bool](Get-SmbServerConfiguration).RequireSecuritySignature
[void](Save-OsirisState 'WIN-SMB-001' ([ordered]@{ value = $old }))
Set-SmbServerConfiguration -RequireSecuritySignature $true -Force
[ordered]@{ changed = ($old -ne $true); previous = [ordered]@{ requiresecuritysignature = $old } }
