# The built-in Guest account is the local account whose SID ends in -501 (name is localised, SID is not).
$guest = Get-CimInstance -ClassName Win32_UserAccount -Filter "LocalAccount=True" | Where-Object { $_.SID -match '^S-1-5-21-[\d-]+-501$' } | Select-Object -First 1
if ($null -eq $guest) { [ordered]@{ present = $false; disabled = $true; sid = $null }; return }
[ordered]@{ present = $true; disabled = [bool]$guest.Disabled; sid = [string]$guest.SID }
