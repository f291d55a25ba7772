# Rollback: remove the osiris journald drop-in (the journal directory and its logs are kept).
rm -f /etc/systemd/journald.conf.d/50-osiris.conf
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl restart systemd-journald
fi
echo '{"removed":"/etc/systemd/journald.conf.d/50-osiris.conf"}'
