# Remediate: restart each failed unit that is in `restart_allowlist` (reset-failed, then restart)
# and check it is active. A failed unit outside the allowlist is left alone: the L1 rule hands those
# to a person. Restarting is not reversible, so there is no rollback.
if [ -e /etc/NIXOS ]; then
  echo "configuration change needed: fix the failed units through the NixOS configuration" >&2
  exit 4
fi
[ -d /run/systemd/system ] || { echo "systemd is not the service manager on this machine" >&2; exit 4; }
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
restarted=""
still=""
for unit in $failed; do
  case ",$allowlist," in *",$unit,"*) ;; *) continue ;; esac
  systemctl reset-failed "$unit" 2>/dev/null || true
  if systemctl restart "$unit" && systemctl is-active --quiet "$unit"; then
    restarted="$restarted$unit
"
  else
    still="$still$unit
"
  fi
done
printf '{"restarted":%s,"still_failed":%s,"left_for_a_person":%s}\n' "$(printf '%s' "$restarted" | json_lines_array)" \
  "$(printf '%s' "$still" | json_lines_array)" "$(printf '%s' "$outside" | json_lines_array)"
[ -z "$still" ] || { echo "$(printf '%s' "$still" | tr '\n' ' ')did not stay up after a restart: see journalctl -u UNIT" >&2; exit 5; }
