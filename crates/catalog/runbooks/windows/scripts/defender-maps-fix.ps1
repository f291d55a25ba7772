# Turns on cloud-delivered protection (MAPS advanced) and safe sample submission; saves previous values.
$p = Get-MpPreference
$previous = [ordered]@{ maps_reporting = [int]$p.MAPSReporting; submit_samples_consent = [int]$p.SubmitSamplesConsent }
[void](Save-OsirisState 'WIN-DEF-004' $previous)
Set-MpPreference -MAPSReporting 2 -SubmitSamplesConsent 1
[ordered]@{ changed = ($previous.maps_reporting -ne 2); previous = $previous }
