# Restores the W32Time start mode saved by the remediation (stops it if it was stopped).
$saved = Get-OsirisState 'WIN-TIME-001'
if ($null -eq $saved) { [ordered]@{ changed = $false; reason = 'nothing saved' }; return }
$modes = @{ Auto = 'Automatic'; Manual = 'Manual'; Disabled = 'Disabled' }
Set-Service -Name W32Time -StartupType $modes[[string]$saved.start_mode]
if ($saved.state -ne 'Running') { Stop-Service -Name W32Time -Force }
Clear-OsirisState 'WIN-TIME-001'
[ordered]@{ changed = $true; restored = $saved }
