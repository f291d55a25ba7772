# Detect: effective PasswordAuthentication of the OpenSSH server (OpenSSH's default is yes).
require_sshd
printf '{"password_authentication":%s}\n' "$(json_str "$(sshd_option passwordauthentication yes)")"
