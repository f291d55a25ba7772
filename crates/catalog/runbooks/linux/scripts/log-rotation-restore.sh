# Rollback: put back /etc/logrotate.conf as it was before the last rotation remediation.
restore_file /etc/logrotate.conf logrotate.conf
echo '{"restored":"/etc/logrotate.conf"}'
