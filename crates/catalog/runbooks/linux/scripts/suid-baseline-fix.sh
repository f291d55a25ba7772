# Remediate: strip set-user-ID and set-group-ID bits from files outside the baseline (in the searched directories); the old modes are kept for rollback.
mkdir -p "$OSIRIS_BACKUP_DIR" && chmod 700 "$OSIRIS_BACKUP_DIR"
suid_unexpected full > "$OSIRIS_BACKUP_DIR/suid-baseline.list"
: > "$OSIRIS_BACKUP_DIR/suid-baseline.modes"
while IFS= read -r file; do
  stat -c '%a %n' "$file" >> "$OSIRIS_BACKUP_DIR/suid-baseline.modes"
  chmod u-s,g-s "$file"
done < "$OSIRIS_BACKUP_DIR/suid-baseline.list"
printf '{"stripped":%s}\n' "$(json_lines_array < "$OSIRIS_BACKUP_DIR/suid-baseline.list")"
