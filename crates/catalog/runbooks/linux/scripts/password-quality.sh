# Detect: the effective pwquality `minlen` (pwquality.conf, then conf.d, then a `minlen=` argument in PAM).
[ -f /etc/security/pwquality.conf ] || not_applicable "libpam-pwquality is not installed (no /etc/security/pwquality.conf)"
# libpwquality's built-in default is 8; later files override earlier ones.
minlen=$(cat /etc/security/pwquality.conf /etc/security/pwquality.conf.d/*.conf 2>/dev/null |
  awk -F= '$1 ~ /^[[:space:]]*minlen[[:space:]]*$/ { gsub(/[[:space:]]/, "", $2); v = $2 } END { print (v == "" ? 8 : v) }')
pam_enabled=false
for file in /etc/pam.d/common-password /etc/pam.d/system-auth /etc/pam.d/password-auth; do
  [ -r "$file" ] || continue
  line=$(sed -e 's/#.*//' "$file" | grep 'pam_pwquality\.so' | tail -n 1)
  [ -n "$line" ] || continue
  pam_enabled=true
  arg=$(printf '%s\n' "$line" | tr -s '[:blank:]' '\n' | sed -n 's/^minlen=//p' | tail -n 1)
  [ -n "$arg" ] && minlen=$arg
done
case "$minlen" in
  '' | *[!0-9]* ) printf '{"minlen":%s,"pam_enabled":%s}\n' "$(json_str "$minlen")" "$pam_enabled"; exit 0 ;;
esac
printf '{"minlen":%s,"pam_enabled":%s}\n' "$minlen" "$pam_enabled"
