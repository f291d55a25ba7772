# Detect: kernel network parameters from /proc/sys (-1 when unreadable, which fails the check).
# One value each, read with the shell's own `read` (no process per value).
read_sysctl() {
  value=
  { IFS=' 	' read -r value || true; } 2>/dev/null < "/proc/sys/$1"
  case "$value" in '' | *[!0-9]*) printf '%s' -1 ;; *) printf '%s' "$value" ;; esac
}
printf '{"ip_forward":%s,"accept_redirects":%s,"send_redirects":%s,"tcp_syncookies":%s,"rp_filter":%s}\n' \
  "$(read_sysctl net/ipv4/ip_forward)" "$(read_sysctl net/ipv4/conf/all/accept_redirects)" \
  "$(read_sysctl net/ipv4/conf/all/send_redirects)" "$(read_sysctl net/ipv4/tcp_syncookies)" \
  "$(read_sysctl net/ipv4/conf/all/rp_filter)"
