# Sets wuauserv back to its default Manual (trigger) start and turns the NoAutoUpdate policy off.
$svc = Get-CimInstance -ClassName Win32_Service -Filter "Name='wuauserv'"
$au = 'HKLM:\SOFTWARE\Policies\Microsoft\Windows\WindowsUpdate\AU'
$old = Get-OsirisRegValue $au 'NoAutoUpdate'
$previous = [ordered]@{ service_start_mode = [string]$svc.StartMode; no_auto_update_existed = ($null -ne $old); no_auto_update = $old }
[void](Save-OsirisState 'WIN-WU-001' $previous)
Set-Service -Name wuauserv -StartupType Manual
if (-not (Test-Path -LiteralPath $au)) { New-Item -Path $au -Force | Out-Null }
New-ItemProperty -LiteralPath $au -Name 'NoAutoUpdate' -Value 0 -PropertyType DWord -Force | Out-Null
[ordered]@{ changed = $true; previous = $previous }
