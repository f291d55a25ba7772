# Detect: journald's configured Storage= (journald.conf, then drop-ins by name) and whether /var/log/journal exists.
if [ ! -e /etc/systemd/journald.conf ] && ! command -v journalctl >/dev/null 2>&1; then
  not_applicable "systemd-journald is not installed"
fi
# Drop-ins apply in file-name order; a name in /etc hides the same name in /run and /usr/lib.
# Found with builtins; sorted by a pipeline only when there are any (most hosts have none).
dropins=""
for dir in /usr/lib/systemd/journald.conf.d /lib/systemd/journald.conf.d /run/systemd/journald.conf.d /etc/systemd/journald.conf.d; do
  for file in "$dir"/*.conf; do [ -f "$file" ] && dropins="$dropins${file##*/} $file
"; done
done
[ -z "$dropins" ] || dropins=$(printf '%s' "$dropins" | awk '{ path[$1] = $2 } END { for (name in path) print name, path[name] }' | sort | cut -d' ' -f2-)
storage_awk='$1 ~ /^[[:space:]]*Storage[[:space:]]*$/ { gsub(/[[:space:]]/, "", $2); v = tolower($2) } END { print (v == "" ? "auto" : v) }'
if [ -z "$dropins" ]; then
  storage=auto
  [ -r /etc/systemd/journald.conf ] && storage=$(awk -F= "$storage_awk" /etc/systemd/journald.conf)
else
  storage=$( { cat /etc/systemd/journald.conf 2>/dev/null
    printf '%s\n' "$dropins" | while IFS= read -r file; do [ -n "$file" ] && cat "$file"; done; } |
    awk -F= "$storage_awk")
fi
journal_dir=false
[ -d /var/log/journal ] && journal_dir=true
printf '{"storage":%s,"journal_dir":%s}\n' "$(json_str "$storage")" "$journal_dir"
