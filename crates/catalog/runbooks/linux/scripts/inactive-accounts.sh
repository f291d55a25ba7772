# Detect: days after password expiry before an account is disabled (`useradd -D` INACTIVE; -1 means never).
command -v useradd >/dev/null 2>&1 || not_applicable "useradd is not installed (no shadow password suite)"
days=$(useradd -D 2>/dev/null | sed -n 's/^INACTIVE=//p')
case "$days" in
  '' ) days=-1 ;;
  -1 ) ;;
  *[!0-9]* ) printf '{"inactive_days":%s}\n' "$(json_str "$days")"; exit 0 ;;
esac
printf '{"inactive_days":%s,"never_disabled":%s}\n' "$days" "$([ "$days" = -1 ] && echo true || echo false)"
