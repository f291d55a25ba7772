# Disables the built-in Guest account (found by SID); rollback re-enables it only if it was enabled.
$guest = Get-LocalUser | Where-Object { $_.SID.Value -match '^S-1-5-21-[\d-]+-501$' } | Select-Object -First 1
if ($null -eq $guest) { [ordered]@{ changed = $false; reason = 'no Guest account' }; return }
$previous = [ordered]@{ sid = $guest.SID.Value; enabled = [bool]$guest.Enabled }
[void](Save-OsirisState 'WIN-ACCT-001' $previous)
Disable-LocalUser -SID $guest.SID
[ordered]@{ changed = [bool]$guest.Enabled; previous = $previous }
