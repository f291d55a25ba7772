# Rollback: put back pwquality.conf (and any conf.d file it changed) as before the last remediation.
restore_file /etc/security/pwquality.conf pwquality.conf
if [ -r "$OSIRIS_BACKUP_DIR/pwquality.d.list" ]; then
  while read -r name file; do restore_file "$file" "$name"; done < "$OSIRIS_BACKUP_DIR/pwquality.d.list"
fi
echo '{"restored":"/etc/security/pwquality.conf"}'
