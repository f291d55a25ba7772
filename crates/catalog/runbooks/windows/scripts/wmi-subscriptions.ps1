# Permanent WMI event subscriptions in root/subscription whose consumer runs code
# (CommandLineEventConsumer, ActiveScriptEventConsumer); Windows ships none of these.
$consumers = @()
foreach ($class in @('CommandLineEventConsumer', 'ActiveScriptEventConsumer')) {
    foreach ($c in @(Get-CimInstance -Namespace root/subscription -ClassName $class -ErrorAction SilentlyContinue)) {
        $consumers += [ordered]@{ class = $class; name = [string]$c.Name; command = [string]("$($c.CommandLineTemplate)$($c.ScriptText)") }
    }
}
$filters = @(Get-CimInstance -Namespace root/subscription -ClassName __EventFilter | ForEach-Object { [ordered]@{ name = [string]$_.Name; query = [string]$_.Query } })
$bindings = @(Get-CimInstance -Namespace root/subscription -ClassName __FilterToConsumerBinding).Count
[ordered]@{ code_consumers = @($consumers); event_filters = $filters; n_bindings = $bindings }
