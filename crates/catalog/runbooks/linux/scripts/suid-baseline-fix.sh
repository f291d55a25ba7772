# Remediate: strip set-user-ID and set-group-ID bits from files outside the baseline; the old modes are kept for rollback.
baseline=${OSIRIS_PARAM_BASELINE:-}
case "$baseline" in
  *[!A-Za-z0-9/._+@,\ -]* ) echo "baseline may hold only absolute paths separated by commas: fix the parameter" >&2; exit 2 ;;
esac
# Every SUID/SGID file on the root filesystem that is not in the baseline, one per line.
suid_unexpected() {
  list=",$(printf '%s' "$baseline" | tr -d ' '),"
  find / -xdev \( -path /proc -o -path /sys -o -path /nix/store \) -prune -o \
    -type f \( -perm -4000 -o -perm -2000 \) -print 2>/dev/null | sort |
    while IFS= read -r file; do
      case "$list" in *",$file,"*) ;; *) printf '%s\n' "$file" ;; esac
    done
}
mkdir -p "$OSIRIS_BACKUP_DIR" && chmod 700 "$OSIRIS_BACKUP_DIR"
suid_unexpected > "$OSIRIS_BACKUP_DIR/suid-baseline.list"
: > "$OSIRIS_BACKUP_DIR/suid-baseline.modes"
while IFS= read -r file; do
  stat -c '%a %n' "$file" >> "$OSIRIS_BACKUP_DIR/suid-baseline.modes"
  chmod u-s,g-s "$file"
done < "$OSIRIS_BACKUP_DIR/suid-baseline.list"
printf '{"stripped":%s}\n' "$(json_lines_array < "$OSIRIS_BACKUP_DIR/suid-baseline.list")"
