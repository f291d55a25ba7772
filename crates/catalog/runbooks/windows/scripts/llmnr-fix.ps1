# Disables LLMNR by policy; the previous value (or its absence) is saved for rollback.
Set-OsirisRegistry 'WIN-NET-001' @(@{ Path = 'HKLM:\SOFTWARE\Policies\Microsoft\Windows NT\DNSClient'; Name = 'EnableMulticast'; Value = 0; Type = 'DWord' })
