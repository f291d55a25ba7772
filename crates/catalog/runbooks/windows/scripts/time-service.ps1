# Windows Time: service state, configured source (W32Time\Parameters Type/NtpServer) and the measured
# offset from that source in seconds (`w32tm /stripchart /dataonly`, number only, either decimal mark).
$svc = Get-CimInstance -ClassName Win32_Service -Filter "Name='W32Time'"
$params = 'HKLM:\SYSTEM\CurrentControlSet\Services\W32Time\Parameters'
$type = [string](Get-OsirisRegValue $params 'Type')
$ntp = [string](Get-OsirisRegValue $params 'NtpServer')
$peer = $(if ($type -eq 'NT5DS') { $env:LOGONSERVER.TrimStart('\') } else { ($ntp -split '[ ,]')[0] })
$offset = $null
if ($svc.State -eq 'Running' -and $type -ne 'NoSync' -and $peer -ne '') {
    foreach ($line in @(& w32tm.exe /stripchart "/computer:$peer" /samples:1 /dataonly)) {
        if ($line -match '([+-]\d+[.,]\d+)s\s*$') { $offset = [math]::Abs([double]($Matches[1] -replace ',', '.')) }
    }
}
[ordered]@{
    service_state = [string]$svc.State
    sync_type = $type
    ntp_server = $ntp
    offset_secs = $(if ($null -eq $offset) { 999999 } else { [math]::Round($offset, 4) })
    offset_measured = ($null -ne $offset)
}
