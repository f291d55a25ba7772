# Turns UAC on with a consent prompt for administrators (Windows default 5); previous values saved.
$key = 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System'
Set-OsirisRegistry 'WIN-UAC-001' @(
    @{ Path = $key; Name = 'EnableLUA'; Value = 1; Type = 'DWord' },
    @{ Path = $key; Name = 'ConsentPromptBehaviorAdmin'; Value = 5; Type = 'DWord' }
)
