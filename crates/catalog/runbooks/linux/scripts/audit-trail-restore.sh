# Rollback: undo LIN-AUDIT-001's fix: auditd back to how it was, or the journald files restored and
# the osiris drop-in removed (the journal directory and the logs in it are kept).
[ -r "$OSIRIS_BACKUP_DIR/audit-trail.state" ] ||
  { echo "no recorded state of the fix to restore (it stopped before changing anything)" >&2; exit 4; }
rm -f "$OSIRIS_BACKUP_DIR/audit-trail.state"
if [ -r "$OSIRIS_BACKUP_DIR/audit-trail.auditd" ]; then
  read -r _ enabled active < "$OSIRIS_BACKUP_DIR/audit-trail.auditd"
  [ "$enabled" = disabled ] && systemctl disable auditd.service >/dev/null 2>&1
  [ "$active" = active ] || systemctl stop auditd.service
  echo '{"restored":"auditd"}'
  exit 0
fi
rm -f /etc/systemd/journald.conf.d/60-osiris-audit.conf
if [ -r "$OSIRIS_BACKUP_DIR/audit-trail.edited" ]; then
  while read -r name file; do
    case "$file" in /etc/systemd/journald.conf | /etc/systemd/journald.conf.d/*.conf) restore_file "$file" "$name" ;; esac
  done < "$OSIRIS_BACKUP_DIR/audit-trail.edited"
fi
if [ -d /run/systemd/system ]; then
  systemctl restart systemd-journald
fi
echo '{"restored":"journald"}'
