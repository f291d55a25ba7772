# Non-Microsoft scheduled tasks whose action runs from a user-writable place (Get-ScheduledTask).
$writable = @('\users\', '\programdata\', '\appdata\', '\temp\', '\windows\temp\', '\perflogs\', '\$recycle.bin\')
$suspicious = @()
foreach ($task in @(Get-ScheduledTask | Where-Object { $_.TaskPath -notlike '\Microsoft\*' })) {
    foreach ($action in @($task.Actions | Where-Object { $_.CimClass.CimClassName -eq 'MSFT_TaskExecAction' })) {
        $exe = [Environment]::ExpandEnvironmentVariables([string]$action.Execute).ToLowerInvariant()
        $arguments = [string]$action.Arguments
        if (@($writable | Where-Object { $exe.Contains($_) -or $arguments.ToLowerInvariant().Contains($_) }).Count -gt 0) {
            $suspicious += [ordered]@{ task_path = [string]$task.TaskPath; task_name = [string]$task.TaskName; execute = [string]$action.Execute; arguments = $arguments; state = [string]$task.State }
        }
    }
}
[ordered]@{ suspicious = @($suspicious) }
