# Detect: an automatic security update mechanism that is switched on and, under systemd, scheduled
# (apt's daily timers, dnf-automatic's timer).
mechanism=none
configured=false
systemd=false
[ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 && systemd=true
timers=""
if [ -e /etc/NIXOS ]; then
  mechanism=nixos-upgrade
  if [ -e /etc/systemd/system/nixos-upgrade.timer ] || [ -e /run/current-system/etc/systemd/system/nixos-upgrade.timer ]; then configured=true; fi
elif [ -x /usr/bin/unattended-upgrade ] || [ -e /etc/apt/apt.conf.d/50unattended-upgrades ]; then
  mechanism=unattended-upgrades
  if apt-config dump 2>/dev/null | grep -q '^APT::Periodic::Unattended-Upgrade "1"'; then configured=true; fi
  timers="apt-daily.timer apt-daily-upgrade.timer"
elif [ -e /etc/dnf/automatic.conf ]; then
  mechanism=dnf-automatic
  if grep -qiE '^\s*apply_updates\s*=\s*(yes|true|1)' /etc/dnf/automatic.conf; then configured=true; fi
  timers="dnf-automatic.timer"
fi
# Timers that are not both enabled and active: updates are configured but never run.
stopped=""
if [ "$systemd" = true ]; then
  for timer in $timers; do
    if ! systemctl is-enabled --quiet "$timer" 2>/dev/null || ! systemctl is-active --quiet "$timer" 2>/dev/null; then
      stopped="$stopped$timer
"
    fi
  done
fi
enabled=false
[ "$configured" = true ] && [ -z "$stopped" ] && enabled=true
printf '{"mechanism":%s,"enabled":%s,"configured":%s,"stopped_timers":%s,"systemd":%s}\n' "$(json_str "$mechanism")" "$enabled" \
  "$configured" "$(printf '%s' "$stopped" | json_lines_array)" "$systemd"
