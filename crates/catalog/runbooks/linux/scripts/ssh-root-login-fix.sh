# Remediate: forbid root logins over SSH (PermitRootLogin no), then reload sshd.
sshd_set PermitRootLogin no
reload_sshd
echo '{"changed":["PermitRootLogin no"]}'
