# Remediate: `useradd -D -f N` (new accounts are disabled N days after their password expires;
# existing accounts keep their setting until changed with `chage --inactive`).
days=${OSIRIS_PARAM_MAX_INACTIVE_DAYS:?}
case "$days" in '' | *[!0-9]* ) echo "max_inactive_days must be a number" >&2; exit 2 ;; esac
mkdir -p "$OSIRIS_BACKUP_DIR" && chmod 700 "$OSIRIS_BACKUP_DIR"
if [ -f /etc/default/useradd ]; then
  backup_file /etc/default/useradd useradd
else
  rm -f "$OSIRIS_BACKUP_DIR/useradd"
fi
useradd -D -f "$days"
printf '{"inactive_days":%s}\n' "$days"
