# Detect: systemd units in the failed state.
if [ ! -d /run/systemd/system ]; then
  not_applicable "systemd is not the service manager on this machine"
fi
printf '{"failed_units":%s}\n' "$(systemctl list-units --state=failed --no-legend --plain 2>/dev/null | awk '{ print $1 }' | json_lines_array)"
