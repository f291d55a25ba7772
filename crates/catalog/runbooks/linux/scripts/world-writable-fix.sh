# Remediate: remove the world-write bit from files under /etc; the old modes are kept for rollback.
mkdir -p "$OSIRIS_BACKUP_DIR" && chmod 700 "$OSIRIS_BACKUP_DIR"
find /etc -xdev -type f -perm -0002 -exec stat -c '%a %n' {} + > "$OSIRIS_BACKUP_DIR/world-writable.modes" 2>/dev/null || true
find /etc -xdev -type f -perm -0002 -exec chmod o-w {} + 2>/dev/null
printf '{"fixed":%s}\n' "$(cut -d' ' -f2- "$OSIRIS_BACKUP_DIR/world-writable.modes" | json_lines_array)"
