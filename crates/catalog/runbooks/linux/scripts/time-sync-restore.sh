# Rollback: put the time service back as the fix found it (enabled or not, running or not) and
# restore or remove the osiris timesyncd drop-in.
state=$OSIRIS_BACKUP_DIR/time-sync.state
[ -r "$state" ] || { echo "no recorded time service state to restore" >&2; exit 4; }
unit=$(sed -n 's/^unit=//p' "$state")
case "$unit" in '' | *[!A-Za-z0-9_.-]*) echo "the recorded state names no valid unit: restore by hand" >&2; exit 4 ;; esac
dropin=/etc/systemd/timesyncd.conf.d/50-osiris.conf
if grep -q '^dropin=present' "$state"; then
  restore_file "$dropin" timesyncd-50-osiris.conf
else
  rm -f "$dropin"
fi
case "$(sed -n 's/^enabled=//p' "$state")" in
  disabled) systemctl disable "$unit.service" >/dev/null 2>&1 ;;
esac
if [ "$(sed -n 's/^active=//p' "$state")" = active ]; then
  systemctl restart "$unit.service"
else
  systemctl stop "$unit.service"
fi
rm -f "$state"
printf '{"service":%s,"restored":true}\n' "$(json_str "$unit")"
