# Remediate: start and enable auditd where the kernel's audit subsystem answers; otherwise keep the
# systemd journal on disk: every other Storage= in /etc is commented out, the drop-in
# /etc/systemd/journald.conf.d/60-osiris-audit.conf says Storage=persistent, /var/log/journal is
# created and journald restarts and flushes to it. Changed files are backed up for the rollback.
# A rollback after an early failure must not replay an older run's state.
rm -f "$OSIRIS_BACKUP_DIR/audit-trail.state"
if [ -e /etc/NIXOS ]; then
  echo "configuration change needed: set security.auditd.enable or services.journald.storage = \"persistent\" in the NixOS configuration" >&2
  exit 4
fi
[ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 ||
  { echo "systemd is not the service manager here and auditd is not running: install and start auditd by hand" >&2; exit 4; }
mkdir -p "$OSIRIS_BACKUP_DIR" && chmod 700 "$OSIRIS_BACKUP_DIR"
: > "$OSIRIS_BACKUP_DIR/audit-trail.edited"
echo started > "$OSIRIS_BACKUP_DIR/audit-trail.state"
if command -v auditctl >/dev/null 2>&1 && auditctl -s >/dev/null 2>&1 &&
  [ "$(systemctl show -p LoadState --value auditd.service 2>/dev/null)" = loaded ]; then
  printf 'auditd %s %s\n' "$(systemctl is-enabled auditd.service 2>/dev/null || echo unknown)" \
    "$(systemctl is-active auditd.service 2>/dev/null || true)" > "$OSIRIS_BACKUP_DIR/audit-trail.auditd"
  systemctl enable --now auditd.service >/dev/null 2>&1 || { echo "auditd.service did not start: see journalctl -u auditd" >&2; exit 5; }
  auditctl -e 1 >/dev/null
  echo '{"trail":"auditd"}'
  exit 0
fi
rm -f "$OSIRIS_BACKUP_DIR/audit-trail.auditd"
dropin=/etc/systemd/journald.conf.d/60-osiris-audit.conf
for file in /etc/systemd/journald.conf /etc/systemd/journald.conf.d/*.conf; do
  [ -f "$file" ] && [ "$file" != "$dropin" ] || continue
  if grep -Eq '^[[:space:]]*Storage[[:space:]]*=' "$file"; then
    name=journald-$(basename "$file")
    backup_file "$file" "$name"
    printf '%s %s\n' "$name" "$file" >> "$OSIRIS_BACKUP_DIR/audit-trail.edited"
    sed -i -E 's/^([[:space:]]*Storage[[:space:]]*=)/# osiris (LIN-AUDIT-001): \1/' "$file"
  fi
done
mkdir -p /etc/systemd/journald.conf.d /var/log/journal
printf '# Written by osiris (LIN-AUDIT-001): keep the system journal, the audit trail, on disk.\n[Journal]\nStorage=persistent\n' > "$dropin"
chmod 644 "$dropin"
if command -v systemd-tmpfiles >/dev/null 2>&1; then
  systemd-tmpfiles --create --prefix /var/log/journal >/dev/null 2>&1 || true
fi
systemctl restart systemd-journald || { echo "systemd-journald did not restart: see systemctl status systemd-journald" >&2; exit 5; }
journalctl --flush >/dev/null 2>&1 || true
printf '{"trail":"persistent-journal","dropin":%s,"on_disk":%s}\n' "$(json_str "$dropin")" \
  "$(ls /var/log/journal/*/system.journal >/dev/null 2>&1 && echo true || echo false)"
