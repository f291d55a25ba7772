# Remediate: start and enable the installed time service (systemd-timesyncd, chrony or ntpsec),
# with the `ntp_servers` parameter as timesyncd's servers when it is set. The previous state is
# recorded for the rollback. NixOS is configured declaratively and is never edited.
# A rollback after an early failure must not replay an older run's state.
rm -f "$OSIRIS_BACKUP_DIR/time-sync.state"
if [ -e /etc/NIXOS ]; then
  echo "configuration change needed: set services.timesyncd.enable (or services.chrony.enable) in the NixOS configuration" >&2
  exit 4
fi
[ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 ||
  { echo "systemd is not the service manager here: start the time daemon by hand" >&2; exit 4; }
servers=${OSIRIS_PARAM_NTP_SERVERS:-}
case "$servers" in
  *[!A-Za-z0-9.:,-]* ) echo "ntp_servers may hold only host names or IP addresses separated by commas: fix the parameter" >&2; exit 2 ;;
  ,* | *, | *,,* ) echo "ntp_servers has an empty entry: fix the parameter" >&2; exit 2 ;;
esac
unit=""
for candidate in chrony chronyd ntpsec systemd-timesyncd; do
  state=$(systemctl show -p LoadState --value "$candidate.service" 2>/dev/null || true)
  case "$state" in
    loaded) unit=$candidate; break ;;
    masked) echo "$candidate.service is masked, so someone switched it off on purpose: unmask it by hand if it should run" >&2; exit 4 ;;
  esac
done
[ -n "$unit" ] || { echo "no time service is installed: install systemd-timesyncd or chrony" >&2; exit 4; }
mkdir -p "$OSIRIS_BACKUP_DIR" && chmod 700 "$OSIRIS_BACKUP_DIR"
dropin=/etc/systemd/timesyncd.conf.d/50-osiris.conf
{
  printf 'unit=%s\n' "$unit"
  printf 'enabled=%s\n' "$(systemctl is-enabled "$unit.service" 2>/dev/null || echo unknown)"
  printf 'active=%s\n' "$(systemctl is-active "$unit.service" 2>/dev/null || true)"
  [ -e "$dropin" ] && echo dropin=present || echo dropin=absent
} > "$OSIRIS_BACKUP_DIR/time-sync.state"
[ -e "$dropin" ] && backup_file "$dropin" timesyncd-50-osiris.conf
if [ -n "$servers" ] && [ "$unit" = systemd-timesyncd ]; then
  mkdir -p /etc/systemd/timesyncd.conf.d
  printf '# Written by osiris (LIN-NTP-001).\n[Time]\nNTP=%s\n' "$(printf '%s' "$servers" | tr ',' ' ')" > "$dropin"
  chmod 644 "$dropin"
fi
systemctl reset-failed "$unit.service" 2>/dev/null || true
systemctl enable "$unit.service" >/dev/null 2>&1 || { echo "systemctl enable $unit.service failed" >&2; exit 5; }
systemctl restart "$unit.service" || { echo "$unit.service did not start: see journalctl -u $unit.service" >&2; exit 5; }
systemctl is-active --quiet "$unit.service" || { echo "$unit.service is not active after a start: see journalctl -u $unit.service" >&2; exit 5; }
printf '{"service":%s,"enabled":true,"servers":%s}\n' "$(json_str "$unit")" "$(json_str "$servers")"
