# Advanced audit policy subcategories that HIPAA audit controls need, by GUID.
$required = Get-OsirisAuditRequired
$settings = Get-OsirisAuditSettings
$subcategories = @()
$missing = @()
foreach ($guid in $required.Keys) {
    $have = 0
    if ($settings.ContainsKey($guid)) { $have = $settings[$guid] }
    $need = $required[$guid].bits
    $subcategories += [ordered]@{ key = $required[$guid].key; guid = $guid; setting = $have; required = $need }
    if (($have -band $need) -ne $need) { $missing += $required[$guid].key }
}
[ordered]@{ subcategories = @($subcategories); missing = @($missing) }
