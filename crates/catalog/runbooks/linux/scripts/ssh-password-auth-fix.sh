# Remediate: turn off SSH password logins. Users without keys lose SSH access, hence no auto-heal.
sshd_set PasswordAuthentication no
sshd_set KbdInteractiveAuthentication no
reload_sshd
echo '{"changed":["PasswordAuthentication no","KbdInteractiveAuthentication no"]}'
