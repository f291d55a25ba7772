# Detect: TCP ports listening on a non-loopback address (`ss -Htln`), compared with the allowed ports.
allowed=${OSIRIS_PARAM_ALLOWED_TCP_PORTS:-22}
case "$allowed" in
  *[!0-9,\ ]* ) echo "allowed_tcp_ports may hold only port numbers separated by commas: fix the parameter" >&2; exit 2 ;;
esac
command -v ss >/dev/null 2>&1 || { echo "ss is not installed: install iproute2 to list listening ports" >&2; exit 3; }
listening=$(ss -Htln | awk '{
  address = $4
  n = split(address, parts, ":")
  port = parts[n]
  host = substr(address, 1, length(address) - length(port) - 1)
  gsub(/[][]/, "", host)
  sub(/%.*/, "", host)
  if (host ~ /^127\./ || host == "::1" || host ~ /^::ffff:127\./) next
  print port
}' | sort -n -u)
allowed_list=$(printf '%s' "$allowed" | tr -d ' ')
unexpected=$(printf '%s\n' "$listening" | while IFS= read -r port; do
  [ -n "$port" ] || continue
  case ",$allowed_list," in *",$port,"*) ;; *) printf '%s\n' "$port" ;; esac
done)
numbers() { printf '%s\n' "$1" | awk 'BEGIN { printf "[" } NF { printf "%s%s", (n++ ? "," : ""), $1 } END { printf "]" }'; }
printf '{"listening_tcp_ports":%s,"unexpected_ports":%s}\n' "$(numbers "$listening")" "$(numbers "$unexpected")"
