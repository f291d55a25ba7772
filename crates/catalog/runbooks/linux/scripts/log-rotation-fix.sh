# Remediate: global `rotate N` in /etc/logrotate.conf (blocks for single logs keep their own setting).
count=${OSIRIS_PARAM_MIN_ROTATE:?}
case "$count" in '' | *[!0-9]* ) echo "min_rotate must be a number" >&2; exit 2 ;; esac
conf=/etc/logrotate.conf
[ -f "$conf" ] || { echo "$conf does not exist: install logrotate first" >&2; exit 4; }
mkdir -p "$OSIRIS_BACKUP_DIR" && chmod 700 "$OSIRIS_BACKUP_DIR"
backup_file "$conf" logrotate.conf
awk -v n="$count" '
  { line = $0; sub(/#.*/, "", line) }
  depth == 0 && split(line, f) >= 1 && f[1] == "rotate" { if (!done) print "rotate " n; done = 1; next }
  { print }
  line ~ /\{/ { depth++ }
  line ~ /\}/ { depth-- }
  END { if (!done) print "rotate " n }
' "$conf" > "$conf.osiris-new"
chmod --reference="$conf" "$conf.osiris-new"
mv "$conf.osiris-new" "$conf"
printf '{"rotate":%s}\n' "$count"
