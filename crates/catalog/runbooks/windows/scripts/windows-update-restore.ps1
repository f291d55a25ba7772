# Restores the service start mode and NoAutoUpdate value saved by the remediation.
$saved = Get-OsirisState 'WIN-WU-001'
if ($null -eq $saved) { [ordered]@{ changed = $false; reason = 'nothing saved' }; return }
$modes = @{ Auto = 'Automatic'; Manual = 'Manual'; Disabled = 'Disabled' }
Set-Service -Name wuauserv -StartupType $modes[[string]$saved.service_start_mode]
$au = 'HKLM:\SOFTWARE\Policies\Microsoft\Windows\WindowsUpdate\AU'
if ($saved.no_auto_update_existed) {
    New-ItemProperty -LiteralPath $au -Name 'NoAutoUpdate' -Value ([int]$saved.no_auto_update) -PropertyType DWord -Force | Out-Null
} else {
    Remove-ItemProperty -LiteralPath $au -Name 'NoAutoUpdate' -ErrorAction SilentlyContinue
}
Clear-OsirisState 'WIN-WU-001'
[ordered]@{ changed = $true; restored = $saved }
