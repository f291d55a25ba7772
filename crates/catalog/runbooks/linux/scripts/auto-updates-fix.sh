# Remediate (Debian unattended-upgrades only): switch on the daily package-list update and
# unattended upgrade in /etc/apt/apt.conf.d/20auto-upgrades, and enable and start apt's daily timers.
# Which packages are upgraded stays as 50unattended-upgrades says (by default: security updates).
# A rollback after an early failure must not replay an older run's state.
rm -f "$OSIRIS_BACKUP_DIR/auto-updates.state"
if [ -e /etc/NIXOS ]; then
  echo "configuration change needed: set system.autoUpgrade.enable in the NixOS configuration" >&2
  exit 4
fi
[ -x /usr/bin/unattended-upgrade ] || { echo "unattended-upgrades is not installed: install it (apt-get install unattended-upgrades), then heal again" >&2; exit 4; }
conf=/etc/apt/apt.conf.d/20auto-upgrades
mkdir -p "$OSIRIS_BACKUP_DIR" && chmod 700 "$OSIRIS_BACKUP_DIR"
if [ -e "$conf" ]; then
  backup_file "$conf" 20auto-upgrades
  echo conf=present > "$OSIRIS_BACKUP_DIR/auto-updates.state"
else
  echo conf=absent > "$OSIRIS_BACKUP_DIR/auto-updates.state"
fi
systemd=false
[ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 && systemd=true
: > "$OSIRIS_BACKUP_DIR/auto-updates.timers"
if [ "$systemd" = true ]; then
  for timer in apt-daily.timer apt-daily-upgrade.timer; do
    printf '%s %s %s\n' "$timer" "$(systemctl is-enabled "$timer" 2>/dev/null || echo unknown)" \
      "$(systemctl is-active "$timer" 2>/dev/null || true)" >> "$OSIRIS_BACKUP_DIR/auto-updates.timers"
  done
fi
rm -f "$OSIRIS_BACKUP_DIR/auto-updates.edited"
# Later files override earlier ones, so the setting goes in every apt.conf.d file that sets it.
for file in /etc/apt/apt.conf.d/*; do
  [ -f "$file" ] && [ "$file" != "$conf" ] || continue
  if grep -Eq '^[[:space:]]*APT::Periodic::(Unattended-Upgrade|Update-Package-Lists)[[:space:]]+"0"' "$file"; then
    backup_file "$file" "apt-$(basename "$file")"
    printf '%s\n' "$(basename "$file")" >> "$OSIRIS_BACKUP_DIR/auto-updates.edited"
    sed -i -E 's/^([[:space:]]*APT::Periodic::(Unattended-Upgrade|Update-Package-Lists)[[:space:]]+)"0"/\1"1"/' "$file"
  fi
done
touch "$conf"
sed -i -E '/^[[:space:]]*APT::Periodic::(Unattended-Upgrade|Update-Package-Lists)[[:space:]]/d' "$conf"
printf 'APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "1";\n' >> "$conf"
chmod 644 "$conf"
if [ "$systemd" = true ]; then
  for timer in apt-daily.timer apt-daily-upgrade.timer; do
    systemctl unmask "$timer" >/dev/null 2>&1 || true
    systemctl enable --now "$timer" >/dev/null 2>&1 || { echo "systemctl enable --now $timer failed" >&2; exit 5; }
  done
fi
printf '{"config":%s,"timers_enabled":%s}\n' "$(json_str "$conf")" "$systemd"
