# BitLocker state of the OS volume from Win32_EncryptableVolume (root/cimv2/Security/MicrosoftVolumeEncryption).
# ProtectionStatus: 0 = off, 1 = on, 2 = unknown. ConversionStatus: 0 = fully decrypted, 1 = fully encrypted.
$drive = $env:SystemDrive
$v = Get-CimInstance -Namespace root/cimv2/Security/MicrosoftVolumeEncryption -ClassName Win32_EncryptableVolume -Filter "DriveLetter='$drive'"
if ($null -eq $v) {
    [ordered]@{ drive = $drive; present = $false; protection_status = 0; conversion_status = 0; encryption_method = 0 }
    return
}
$conversion = Invoke-CimMethod -InputObject $v -MethodName GetConversionStatus
[ordered]@{
    drive = $drive
    present = $true
    protection_status = [int]$v.ProtectionStatus
    conversion_status = [int]$conversion.ConversionStatus
    encryption_percentage = [int]$conversion.EncryptionPercentage
    encryption_method = [int]$v.EncryptionMethod
}
