# Detect: effective PermitRootLogin of the OpenSSH server.
require_sshd
printf '{"permit_root_login":%s}\n' "$(json_str "$(sshd_option permitrootlogin prohibit-password)")"
