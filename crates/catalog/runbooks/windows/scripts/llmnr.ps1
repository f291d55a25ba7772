# LLMNR policy: DNSClient EnableMulticast (0 = disabled; absent means enabled).
$key = 'HKLM:\SOFTWARE\Policies\Microsoft\Windows NT\DNSClient'
[ordered]@{
    enable_multicast = $(if ($null -eq ($v = Get-OsirisRegValue $key 'EnableMulticast')) { 1 } else { [int]$v })
}
