# Pulls current signatures from the configured update source; nothing to roll back.
$before = (Get-MpComputerStatus).AntivirusSignatureVersion
Update-MpSignature
$after = (Get-MpComputerStatus).AntivirusSignatureVersion
[ordered]@{ changed = ($before -ne $after); previous = [ordered]@{ antivirus_signature_version = [string]$before }; current = [ordered]@{ antivirus_signature_version = [string]$after } }
