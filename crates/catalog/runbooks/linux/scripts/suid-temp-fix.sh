# Remediate: strip set-user-ID and set-group-ID bits from files in temporary directories (kept, not deleted).
mkdir -p "$OSIRIS_BACKUP_DIR" && chmod 700 "$OSIRIS_BACKUP_DIR"
dirs=""
for d in /tmp /var/tmp /dev/shm; do [ -d "$d" ] && dirs="$dirs $d"; done
# shellcheck disable=SC2086
find $dirs -xdev -type f \( -perm -4000 -o -perm -2000 \) -exec stat -c '%a %n' {} + > "$OSIRIS_BACKUP_DIR/suid-temp.modes" 2>/dev/null || true
# shellcheck disable=SC2086
find $dirs -xdev -type f \( -perm -4000 -o -perm -2000 \) -exec chmod u-s,g-s {} + 2>/dev/null
printf '{"stripped":%s}\n' "$(cut -d' ' -f2- "$OSIRIS_BACKUP_DIR/suid-temp.modes" | json_lines_array)"
