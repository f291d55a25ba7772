# Rollback: put back /etc/default/useradd as it was before the last inactivity remediation.
if [ -e "$OSIRIS_BACKUP_DIR/useradd" ]; then
  restore_file /etc/default/useradd useradd
else
  rm -f /etc/default/useradd
fi
echo '{"restored":"/etc/default/useradd"}'
