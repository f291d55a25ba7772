# Detect: an automatic security update mechanism that is switched on.
mechanism=none
enabled=false
if [ -e /etc/NIXOS ]; then
  mechanism=nixos-upgrade
  if [ -e /etc/systemd/system/nixos-upgrade.timer ] || [ -e /run/current-system/etc/systemd/system/nixos-upgrade.timer ]; then enabled=true; fi
elif [ -x /usr/bin/unattended-upgrade ] || [ -e /etc/apt/apt.conf.d/50unattended-upgrades ]; then
  mechanism=unattended-upgrades
  if apt-config dump 2>/dev/null | grep -q '^APT::Periodic::Unattended-Upgrade "1"'; then enabled=true; fi
elif [ -e /etc/dnf/automatic.conf ]; then
  mechanism=dnf-automatic
  if grep -qiE '^\s*apply_updates\s*=\s*(yes|true|1)' /etc/dnf/automatic.conf; then enabled=true; fi
fi
printf '{"mechanism":%s,"enabled":%s}\n' "$(json_str "$mechanism")" "$enabled"
