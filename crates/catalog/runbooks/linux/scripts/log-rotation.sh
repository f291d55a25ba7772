# Detect: logrotate installed and the global `rotate` count in /etc/logrotate.conf (0 when unset: old logs are deleted).
if ! command -v logrotate >/dev/null 2>&1 && [ ! -e /etc/logrotate.conf ]; then
  not_applicable "logrotate is not installed"
fi
installed=false
command -v logrotate >/dev/null 2>&1 && installed=true
rotate=$(awk '{ sub(/#.*/, "") } /\{/ { depth++ } /\}/ { depth-- } depth == 0 && $1 == "rotate" { v = $2 } END { print (v == "" ? 0 : v) }' /etc/logrotate.conf 2>/dev/null)
case "$rotate" in
  '' ) rotate=0 ;;
  *[!0-9]* ) printf '{"installed":%s,"rotate":%s}\n' "$installed" "$(json_str "$rotate")"; exit 0 ;;
esac
printf '{"installed":%s,"rotate":%s}\n' "$installed" "$rotate"
