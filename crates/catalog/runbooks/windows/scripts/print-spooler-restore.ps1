# Restores the Print Spooler start mode and, if it was running, starts it again.
$saved = Get-OsirisState 'WIN-SPOOL-001'
if ($null -eq $saved) { [ordered]@{ changed = $false; reason = 'nothing saved' }; return }
$modes = @{ Auto = 'Automatic'; Manual = 'Manual'; Disabled = 'Disabled' }
Set-Service -Name Spooler -StartupType $modes[[string]$saved.start_mode]
if ($saved.state -eq 'Running') { Start-Service -Name Spooler }
Clear-OsirisState 'WIN-SPOOL-001'
[ordered]@{ changed = $true; restored = $saved }
