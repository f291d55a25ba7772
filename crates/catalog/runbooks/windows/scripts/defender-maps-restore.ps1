# Restores the MAPS settings saved by the remediation.
$saved = Get-OsirisState 'WIN-DEF-004'
if ($null -eq $saved) { [ordered]@{ changed = $false; reason = 'nothing saved' }; return }
Set-MpPreference -MAPSReporting ([int]$saved.maps_reporting) -SubmitSamplesConsent ([int]$saved.submit_samples_consent)
Clear-OsirisState 'WIN-DEF-004'
[ordered]@{ changed = $true; restored = [ordered]@{ maps_reporting = [int]$saved.maps_reporting; submit_samples_consent = [int]$saved.submit_samples_consent } }
