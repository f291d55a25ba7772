# Detect: TCP ports listening on a non-loopback address (`ss -Htln`), compared with the allowed ports.
allowed=${OSIRIS_PARAM_ALLOWED_TCP_PORTS:-22}
case "$allowed" in
  *[!0-9,\ ]* ) echo "allowed_tcp_ports may hold only port numbers separated by commas: fix the parameter" >&2; exit 2 ;;
esac
command -v ss >/dev/null 2>&1 || { echo "ss is not installed: install iproute2 to list listening ports" >&2; exit 3; }
allowed_list=$allowed
case "$allowed_list" in *" "*) allowed_list=$(printf '%s' "$allowed" | tr -d ' ') ;; esac
# One awk: the non-loopback listening ports, sorted and each once, and those not allowed.
ss -Htln | awk -v allowed=",$allowed_list," '
  {
    address = $4
    n = split(address, parts, ":")
    port = parts[n]
    host = substr(address, 1, length(address) - length(port) - 1)
    gsub(/[][]/, "", host)
    sub(/%.*/, "", host)
    if (host ~ /^127\./ || host == "::1" || host ~ /^::ffff:127\./) next
    if (port !~ /^[0-9]+$/ || (port in seen)) next
    seen[port] = 1
    p[++m] = port + 0
  }
  END {
    for (i = 2; i <= m; i++) { x = p[i]; for (j = i - 1; j > 0 && p[j] > x; j--) p[j + 1] = p[j]; p[j + 1] = x }
    printf "{\"listening_tcp_ports\":["
    for (i = 1; i <= m; i++) printf "%s%s", (i > 1 ? "," : ""), p[i]
    printf "],\"unexpected_ports\":["
    for (i = 1; i <= m; i++) if (index(allowed, "," p[i] ",") == 0) printf "%s%s", (u++ ? "," : ""), p[i]
    printf "]}\n"
  }'
