# SMB server settings from Get-SmbServerConfiguration (booleans).
$c = Get-SmbServerConfiguration
[ordered]@{
    enable_smb1_protocol = [bool]$c.EnableSMB1Protocol
    require_security_signature = [bool]$c.RequireSecuritySignature
    enable_security_signature = [bool]$c.EnableSecuritySignature
    encrypt_data = [bool]$c.EncryptData
}
