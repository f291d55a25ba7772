# Free space per fixed volume (Win32_LogicalDisk DriveType 3), in whole percent and GiB.
$volumes = @(Get-CimInstance -ClassName Win32_LogicalDisk -Filter "DriveType=3" | Where-Object { $_.Size -gt 0 } | ForEach-Object {
    [ordered]@{
        drive = [string]$_.DeviceID
        size_gb = [math]::Round($_.Size / 1GB, 1)
        free_gb = [math]::Round($_.FreeSpace / 1GB, 1)
        free_percent = [int][math]::Floor(100 * $_.FreeSpace / $_.Size)
    }
})
$min = 100
foreach ($v in $volumes) { if ($v.free_percent -lt $min) { $min = $v.free_percent } }
[ordered]@{ volumes = $volumes; min_free_percent = $min }
