# Autostart entries in HKLM and every loaded user hive's Run/RunOnce keys, against the allowlist of value names.
$allowed = @(Split-OsirisList ([string]$Params.allowed_entries) | ForEach-Object { $_.ToLowerInvariant() })
$keys = @(
    'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Run',
    'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\RunOnce',
    'HKLM:\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Run',
    'HKLM:\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\RunOnce'
)
foreach ($hive in @(Get-ChildItem -LiteralPath 'Registry::HKEY_USERS' | Where-Object { $_.PSChildName -match '^S-1-5-21-[\d-]+$' })) {
    $keys += "Registry::HKEY_USERS\$($hive.PSChildName)\Software\Microsoft\Windows\CurrentVersion\Run"
    $keys += "Registry::HKEY_USERS\$($hive.PSChildName)\Software\Microsoft\Windows\CurrentVersion\RunOnce"
}
$entries = @()
foreach ($key in $keys) {
    $item = Get-Item -LiteralPath $key -ErrorAction SilentlyContinue
    if ($null -eq $item) { continue }
    foreach ($name in @($item.GetValueNames() | Where-Object { $_ -ne '' })) {
        $entries += [ordered]@{ key = $key; name = [string]$name; command = [string]$item.GetValue($name) }
    }
}
[ordered]@{ entries = @($entries); unexpected = @($entries | Where-Object { $allowed -notcontains $_.name.ToLowerInvariant() } | ForEach-Object { $_.name }) }
