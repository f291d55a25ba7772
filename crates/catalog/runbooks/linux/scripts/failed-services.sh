# Detect: systemd units in the failed state, and which of them are outside `restart_allowlist`
# (the units L1 may restart on its own).
if [ ! -d /run/systemd/system ]; then
  not_applicable "systemd is not the service manager on this machine"
fi
# failed_unit_list (the same in both LIN-SVC-001 scripts): sets `failed` (failed systemd units, one
# per line), `allowlist` (the `restart_allowlist` parameter without spaces) and `outside` (failed
# units not in it); exits 2 on a malformed parameter.
failed_unit_list() {
  allowlist=$(printf '%s' "${OSIRIS_PARAM_RESTART_ALLOWLIST:-}" | tr -d ' ')
  case "$allowlist" in
    *[!A-Za-z0-9@._:,-]* ) echo "restart_allowlist may hold only unit names separated by commas: fix the parameter" >&2; exit 2 ;;
  esac
  failed=$(systemctl list-units --state=failed --no-legend --plain 2>/dev/null | awk '{ print $1 }')
  outside=$(printf '%s\n' "$failed" | while IFS= read -r unit; do
    [ -n "$unit" ] || continue
    case ",$allowlist," in *",$unit,"*) ;; *) printf '%s\n' "$unit" ;; esac
  done)
}
failed_unit_list
printf '{"failed_units":%s,"not_allowlisted":%s,"n_not_allowlisted":%s}\n' \
  "$(printf '%s' "$failed" | json_lines_array)" "$(printf '%s' "$outside" | json_lines_array)" \
  "$(printf '%s' "$outside" | grep -c .)"
