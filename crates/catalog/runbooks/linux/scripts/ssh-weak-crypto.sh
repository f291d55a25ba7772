# Detect: weak algorithms enabled in sshd's Ciphers, MACs and KexAlgorithms.
require_sshd
algorithms=$(for option in ciphers macs kexalgorithms; do sshd_option "$option" ""; printf ','; done)
weak=$(printf '%s' "$algorithms" | tr ',' '\n' |
  grep -E '3des|arcfour|blowfish|cast128|rc4|-cbc$|hmac-md5|-96$|umac-64|diffie-hellman-group1-|diffie-hellman-group14-sha1|diffie-hellman-group-exchange-sha1' |
  sort -u || true)
printf '{"weak_algorithms":%s,"configured":%s}\n' \
  "$(printf '%s' "$weak" | json_lines_array)" "$(json_str "$algorithms")"
