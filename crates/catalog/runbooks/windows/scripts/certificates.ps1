# Certificates in Cert:\LocalMachine\My and how many days each has left (negative = expired).
$certs = @(Get-ChildItem -Path Cert:\LocalMachine\My | ForEach-Object {
    [ordered]@{
        subject = [string]$_.Subject
        thumbprint = [string]$_.Thumbprint
        not_after = ConvertTo-OsirisUtc $_.NotAfter
        days_left = [int][math]::Floor(($_.NotAfter.ToUniversalTime() - [DateTime]::UtcNow).TotalDays)
    }
})
$limit = [int]$Params.min_days_left
[ordered]@{ certificates = $certs; expiring = @($certs | Where-Object { $_.days_left -lt $limit } | ForEach-Object { $_.thumbprint }) }
