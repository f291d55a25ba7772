# Detect: kernel network parameters from /proc/sys (-1 when unreadable, which fails the check).
read_sysctl() {
  value=$(cat "/proc/sys/$1" 2>/dev/null | tr -d ' \t')
  case "$value" in '' | *[!0-9]*) printf '%s' -1 ;; *) printf '%s' "$value" ;; esac
}
printf '{"ip_forward":%s,"accept_redirects":%s,"send_redirects":%s,"tcp_syncookies":%s,"rp_filter":%s}\n' \
  "$(read_sysctl net/ipv4/ip_forward)" "$(read_sysctl net/ipv4/conf/all/accept_redirects)" \
  "$(read_sysctl net/ipv4/conf/all/send_redirects)" "$(read_sysctl net/ipv4/tcp_syncookies)" \
  "$(read_sysctl net/ipv4/conf/all/rp_filter)"
