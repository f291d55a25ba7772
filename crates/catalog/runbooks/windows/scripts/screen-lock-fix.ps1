# Sets the machine inactivity limit to the parameter; the previous value (or absence) is saved.
Set-OsirisRegistry 'WIN-LOCK-002' @(@{ Path = 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System'; Name = 'InactivityTimeoutSecs'; Value = [int]$Params.max_timeout_secs; Type = 'DWord' })
