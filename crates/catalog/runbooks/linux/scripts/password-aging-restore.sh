# Rollback: put back /etc/login.defs as it was before the last remediation.
restore_file /etc/login.defs login.defs
echo '{"restored":"/etc/login.defs"}'
