# Detect: whether a time synchronisation service reports the clock as synchronised.
source=none
synced=false
if [ -d /run/systemd/system ] && command -v timedatectl >/dev/null 2>&1; then
  value=$(timedatectl show -p NTPSynchronized --value 2>/dev/null || true)
  if [ -n "$value" ]; then
    source=timedatectl
    [ "$value" = yes ] && synced=true
  fi
fi
if [ "$synced" = false ] && command -v chronyc >/dev/null 2>&1; then
  if chronyc -n tracking 2>/dev/null | grep -q '^Leap status *: Normal'; then source=chrony; synced=true; fi
fi
if [ "$synced" = false ] && command -v ntpq >/dev/null 2>&1; then
  if ntpq -pn 2>/dev/null | grep -q '^\*'; then source=ntpd; synced=true; fi
fi
printf '{"synchronized":%s,"source":%s}\n' "$synced" "$(json_str "$source")"
