# Remediate: drop-in /etc/systemd/journald.conf.d/50-osiris.conf with Storage=persistent, create
# /var/log/journal, and restart journald when systemd is running.
mkdir -p /etc/systemd/journald.conf.d /var/log/journal
printf '# Written by osiris (LIN-JOURNAL-001): keep the system journal on disk.\n[Journal]\nStorage=persistent\n' > /etc/systemd/journald.conf.d/50-osiris.conf
chmod 644 /etc/systemd/journald.conf.d/50-osiris.conf
if command -v systemd-tmpfiles >/dev/null 2>&1; then
  systemd-tmpfiles --create --prefix /var/log/journal >/dev/null 2>&1 || true
fi
restarted=false
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl restart systemd-journald && restarted=true
fi
printf '{"dropin":"/etc/systemd/journald.conf.d/50-osiris.conf","restarted":%s}\n' "$restarted"
