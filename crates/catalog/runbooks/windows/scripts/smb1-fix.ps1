# Sets SMB server EnableSMB1Protocol to $false; saves the previous value.
$old = [bool](Get-SmbServerConfiguration).EnableSMB1Protocol
[void](Save-OsirisState 'WIN-SMB-002' ([ordered]@{ value = $old }))
Set-SmbServerConfiguration -EnableSMB1Protocol $false -Force
[ordered]@{ changed = ($old -ne $false); previous = [ordered]@{ enablesmb1protocol = $old } }
