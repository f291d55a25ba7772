# Rollback: put back the sshd configuration saved before the last remediation, then reload sshd.
restore_file /etc/ssh/sshd_config sshd_config
sshd -t
reload_sshd
echo '{"restored":"/etc/ssh/sshd_config"}'
