# Detect: whether security events land in a persistent audit trail: the audit daemon with the
# kernel's audit enabled, or (under systemd) a journal that journald keeps on disk.
require_root "the audit daemon status"
trail=none
auditd=false
if command -v auditctl >/dev/null 2>&1 && auditctl -s 2>/dev/null | grep -q '^enabled [12]'; then
  auditd=true
  trail=auditd
fi
systemd=false
[ -d /run/systemd/system ] && command -v journalctl >/dev/null 2>&1 && systemd=true
journal=absent
storage=none
if [ "$systemd" = true ]; then
  # Effective Storage=: journald.conf, then drop-ins in file-name order (a name in /etc hides the
  # same name in /run and /usr/lib); the last setting wins.
  dropins=$(for dir in /usr/lib/systemd/journald.conf.d /lib/systemd/journald.conf.d /run/systemd/journald.conf.d /etc/systemd/journald.conf.d; do
    for file in "$dir"/*.conf; do [ -f "$file" ] && printf '%s %s\n' "$(basename "$file")" "$file"; done
  done | awk '{ path[$1] = $2 } END { for (name in path) print name, path[name] }' | sort | cut -d' ' -f2-)
  storage=$( { cat /etc/systemd/journald.conf 2>/dev/null
    printf '%s\n' "$dropins" | while IFS= read -r file; do [ -n "$file" ] && cat "$file"; done; } |
    awk -F= '$1 ~ /^[[:space:]]*Storage[[:space:]]*$/ { gsub(/[[:space:]]/, "", $2); v = tolower($2) } END { print (v == "" ? "auto" : v) }')
  journal=volatile
  if [ "$storage" = persistent ] || { [ "$storage" = auto ] && [ -d /var/log/journal ]; }; then
    journal=persistent
    [ "$trail" = none ] && trail=persistent-journal
  fi
fi
printf '{"audit_trail":%s,"auditd_enabled":%s,"journal":%s,"journal_storage":%s,"systemd":%s}\n' \
  "$(json_str "$trail")" "$auditd" "$(json_str "$journal")" "$(json_str "$storage")" "$systemd"
