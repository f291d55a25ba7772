# Defender state from MSFT_MpComputerStatus (root/Microsoft/Windows/Defender), raw values only.
$s = Get-CimInstance -Namespace root/Microsoft/Windows/Defender -ClassName MSFT_MpComputerStatus
$p = Get-CimInstance -Namespace root/Microsoft/Windows/Defender -ClassName MSFT_MpPreference
[ordered]@{
    am_service_enabled = [bool]$s.AMServiceEnabled
    antivirus_enabled = [bool]$s.AntivirusEnabled
    real_time_protection_enabled = [bool]$s.RealTimeProtectionEnabled
    disable_realtime_monitoring = [bool]$p.DisableRealtimeMonitoring
    am_engine_version = [string]$s.AMEngineVersion
    antivirus_signature_version = [string]$s.AntivirusSignatureVersion
    antivirus_signature_age_days = [int]$s.AntivirusSignatureAge
    antivirus_signature_last_updated = ConvertTo-OsirisUtc $s.AntivirusSignatureLastUpdated
    maps_reporting = [int]$p.MAPSReporting
    submit_samples_consent = [int]$p.SubmitSamplesConsent
}
