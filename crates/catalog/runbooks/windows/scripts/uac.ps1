# UAC policy (Policies\System): EnableLUA 1 = on; ConsentPromptBehaviorAdmin 0 = elevate without prompting.
$key = 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System'
[ordered]@{
    enable_lua = $(if ($null -eq ($v = Get-OsirisRegValue $key 'EnableLUA')) { 1 } else { [int]$v })
    consent_prompt_behavior_admin = $(if ($null -eq ($v = Get-OsirisRegValue $key 'ConsentPromptBehaviorAdmin')) { 5 } else { [int]$v })
}
