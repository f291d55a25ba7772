# Detect: PASS_MAX_DAYS from /etc/login.defs (99999, the shadow-utils default, means never).
if [ ! -r /etc/login.defs ]; then
  not_applicable "/etc/login.defs does not exist (no shadow password suite)"
fi
days=$(awk '$1 == "PASS_MAX_DAYS" { print $2 }' /etc/login.defs | tail -n 1)
case "$days" in
  '' ) days=99999 ;;
  *[!0-9]* ) printf '{"pass_max_days":%s}\n' "$(json_str "$days")"; exit 0 ;;
esac
printf '{"pass_max_days":%s}\n' "$days"
