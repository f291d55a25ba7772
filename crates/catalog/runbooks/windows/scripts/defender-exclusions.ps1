# Defender exclusions (MSFT_MpPreference) compared with the allowlist; matching is case-insensitive.
$p = Get-CimInstance -Namespace root/Microsoft/Windows/Defender -ClassName MSFT_MpPreference
$allowed = @(Split-OsirisList ([string]$Params.allowed_exclusions) | ForEach-Object { $_.ToLowerInvariant() })
$all = @()
foreach ($kind in @('ExclusionPath', 'ExclusionProcess', 'ExclusionExtension')) {
    foreach ($value in @($p.$kind)) {
        if ($null -ne $value -and "$value" -ne '') { $all += [ordered]@{ kind = $kind; value = [string]$value } }
    }
}
[ordered]@{
    exclusions = @($all)
    unexpected = @($all | Where-Object { $allowed -notcontains $_.value.ToLowerInvariant() } | ForEach-Object { $_.value })
}
