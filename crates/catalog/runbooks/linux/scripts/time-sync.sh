# Detect: whether the clock is synchronised, or a time service started within the grace period is
# still synchronising. `state` is synchronized | synchronizing | unsynchronized | inactive.
grace=${OSIRIS_PARAM_SYNC_GRACE_SECS:-900}
case "$grace" in '' | *[!0-9]*) echo "sync_grace_secs must be a number of seconds: fix the parameter" >&2; exit 2 ;; esac
systemd=false
[ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 && systemd=true
source=none
synced=false
if [ "$systemd" = true ] && command -v timedatectl >/dev/null 2>&1; then
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
# The time service: the first active one, else the first installed one.
service=none
active=false
since=0
if [ "$systemd" = true ]; then
  # Every unit's state from one systemctl, a line each in this order ("inactive" for a unit that
  # does not exist); `is-active --quiet` counts "reloading" as active too.
  states=$(systemctl is-active chrony.service chronyd.service ntpsec.service ntp.service ntpd.service \
    openntpd.service systemd-timesyncd.service 2>/dev/null || true)
  for unit in chrony chronyd ntpsec ntp ntpd openntpd systemd-timesyncd; do
    unit_state=${states%%
*}
    case "$states" in *"
"*) states=${states#*
} ;; *) states= ;; esac
    if [ "$unit_state" = active ] || [ "$unit_state" = reloading ]; then
      service=$unit
      active=true
      since=$(systemctl show -p ActiveEnterTimestamp --timestamp=unix --value "$unit.service" 2>/dev/null | tr -d '@')
      case "$since" in
        '' | *[!0-9]*)
          # systemd before 248 has no --timestamp=unix: use the monotonic start time and the uptime.
          mono=$(systemctl show -p ActiveEnterTimestampMonotonic --value "$unit.service" 2>/dev/null)
          case "$mono" in '' | *[!0-9]*) since=0 ;; *) since=$(( $(date +%s) - $(cut -d. -f1 /proc/uptime) + mono / 1000000 )) ;; esac
          ;;
      esac
      break
    fi
  done
  if [ "$service" = none ]; then
    for unit in chrony chronyd ntpsec ntp ntpd openntpd systemd-timesyncd; do
      state=$(systemctl show -p LoadState --value "$unit.service" 2>/dev/null || true)
      if [ "$state" = loaded ] || [ "$state" = masked ]; then service=$unit; break; fi
    done
  fi
else
  # One pgrep for all of them; the first in this order wins.
  running=$(pgrep -l -x 'chronyd|ntpd|ntpsec|openntpd' 2>/dev/null || true)
  for daemon in chronyd ntpd ntpsec openntpd; do
    case "
$running
" in *" $daemon
"*) service=$daemon; active=true; break ;; esac
  done
fi
case "$since" in '' | *[!0-9]*) since=0 ;; esac
age=-1
[ "$since" -gt 0 ] && age=$(( $(date +%s) - since ))
if [ "$synced" = true ]; then
  state=synchronized
elif [ "$active" = true ] && [ "$age" -ge 0 ] && [ "$age" -lt "$grace" ]; then
  state=synchronizing
elif [ "$active" = true ]; then
  state=unsynchronized
else
  state=inactive
fi
printf '{"state":%s,"synchronized":%s,"source":%s,"service":%s,"service_active":%s,"active_secs":%s,"systemd":%s,"declarative":%s}\n' \
  "$(json_str "$state")" "$synced" "$(json_str "$source")" "$(json_str "$service")" "$active" "$age" "$systemd" \
  "$([ -e /etc/NIXOS ] && echo true || echo false)"
