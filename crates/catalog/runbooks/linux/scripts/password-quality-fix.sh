# Remediate: `minlen = N` in /etc/security/pwquality.conf; conflicting `minlen` lines in conf.d are commented out.
length=${OSIRIS_PARAM_MIN_LENGTH:?}
case "$length" in '' | *[!0-9]* ) echo "min_length must be a number" >&2; exit 2 ;; esac
conf=/etc/security/pwquality.conf
[ -f "$conf" ] || { echo "$conf does not exist: install libpam-pwquality first" >&2; exit 4; }
mkdir -p "$OSIRIS_BACKUP_DIR" && chmod 700 "$OSIRIS_BACKUP_DIR"
backup_file "$conf" pwquality.conf
: > "$OSIRIS_BACKUP_DIR/pwquality.d.list"
for file in /etc/security/pwquality.conf.d/*.conf; do
  [ -f "$file" ] || continue
  grep -qE '^[[:space:]]*minlen[[:space:]]*=' "$file" || continue
  name=pwquality.d.$(basename "$file")
  backup_file "$file" "$name"
  printf '%s %s\n' "$name" "$file" >> "$OSIRIS_BACKUP_DIR/pwquality.d.list"
  sed -i -E 's/^([[:space:]]*minlen[[:space:]]*=)/# osiris: \1/' "$file"
done
if grep -qE '^[[:space:]]*minlen[[:space:]]*=' "$conf"; then
  sed -i -E "s/^[[:space:]]*minlen[[:space:]]*=.*/minlen = $length/" "$conf"
else
  printf 'minlen = %s\n' "$length" >> "$conf"
fi
printf '{"minlen":%s}\n' "$length"
