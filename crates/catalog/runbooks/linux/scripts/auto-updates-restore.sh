# Rollback: restore 20auto-upgrades and any apt.conf.d file the fix edited, and put apt's daily
# timers back as the fix found them.
state=$OSIRIS_BACKUP_DIR/auto-updates.state
[ -r "$state" ] || { echo "no recorded state of the fix to restore (it stopped before changing anything)" >&2; exit 4; }
conf=/etc/apt/apt.conf.d/20auto-upgrades
if grep -q '^conf=present' "$state"; then
  restore_file "$conf" 20auto-upgrades
else
  rm -f "$conf"
fi
if [ -r "$OSIRIS_BACKUP_DIR/auto-updates.edited" ]; then
  while IFS= read -r name; do
    case "$name" in '' | */* | .*) continue ;; esac
    restore_file "/etc/apt/apt.conf.d/$name" "apt-$name"
  done < "$OSIRIS_BACKUP_DIR/auto-updates.edited"
  rm -f "$OSIRIS_BACKUP_DIR/auto-updates.edited"
fi
if [ -r "$OSIRIS_BACKUP_DIR/auto-updates.timers" ] && [ -d /run/systemd/system ]; then
  while read -r timer enabled active; do
    case "$timer" in apt-daily.timer | apt-daily-upgrade.timer) ;; *) continue ;; esac
    case "$enabled" in masked) systemctl mask "$timer" >/dev/null 2>&1 ;; disabled) systemctl disable "$timer" >/dev/null 2>&1 ;; esac
    [ "$active" = active ] || systemctl stop "$timer"
  done < "$OSIRIS_BACKUP_DIR/auto-updates.timers"
fi
rm -f "$state"
echo '{"restored":true}'
