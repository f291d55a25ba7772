# Rollback: put back common-auth and faillock.conf as they were before the last lockout remediation.
restore_file /etc/pam.d/common-auth common-auth
if [ -e "$OSIRIS_BACKUP_DIR/faillock.conf" ]; then
  restore_file /etc/security/faillock.conf faillock.conf
else
  rm -f /etc/security/faillock.conf
fi
echo '{"restored":["/etc/pam.d/common-auth","/etc/security/faillock.conf"]}'
