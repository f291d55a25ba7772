# Detect: whether security events land in a persistent audit trail.
require_root "the audit daemon status"
trail=none
auditd=false
if command -v auditctl >/dev/null 2>&1 && auditctl -s 2>/dev/null | grep -q '^enabled [12]'; then
  auditd=true
  trail=auditd
fi
journal=volatile
storage=$(cat /etc/systemd/journald.conf /etc/systemd/journald.conf.d/*.conf 2>/dev/null | awk -F= '$1 == "Storage" { v = $2 } END { print v }')
if [ "$storage" = persistent ] || { [ "$storage" != volatile ] && [ -d /var/log/journal ] && [ -d /run/systemd/system ]; }; then
  journal=persistent
  [ "$trail" = none ] && trail=persistent-journal
fi
printf '{"audit_trail":%s,"auditd_enabled":%s,"journal":%s}\n' "$(json_str "$trail")" "$auditd" "$(json_str "$journal")"
