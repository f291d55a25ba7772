# Members of the local Administrators group (SID S-1-5-32-544, name is localised) against the allowlist.
# The built-in Administrator (-500) and Domain Admins (-512) are always expected.
$allowed = @(Split-OsirisList ([string]$Params.allowed_admins) | ForEach-Object { $_.ToLowerInvariant() })
$members = @(Get-LocalGroupMember -SID 'S-1-5-32-544' | ForEach-Object {
    [ordered]@{ name = [string]$_.Name; sid = [string]$_.SID.Value; object_class = [string]$_.ObjectClass; source = [string]$_.PrincipalSource }
})
$unexpected = @($members | Where-Object {
    $_.sid -notmatch '-(500|512)$' -and $allowed -notcontains $_.name.ToLowerInvariant() -and $allowed -notcontains $_.sid.ToLowerInvariant()
} | ForEach-Object { $_.name })
[ordered]@{ members = $members; unexpected = $unexpected }
