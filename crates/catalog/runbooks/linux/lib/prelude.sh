# Shared helpers, prepended to every sh script of this platform by the catalogue.
# Scripts print exactly one JSON object on stdout; these helpers keep that output valid.
set -u
export LC_ALL=C PATH="/usr/sbin:/usr/bin:/sbin:/bin:${PATH:-}"
# json_escape: stdin with JSON string escaping (backslash, quote); control characters other than newline become `?`.
json_escape() {
  sed -e 's/[[:cntrl:]]/?/g' -e 's/\\/\\\\/g' -e 's/"/\\"/g'
}
# json_str VALUE: VALUE as one JSON string (newlines kept as \n). Printable ASCII without a quote or
# a backslash (most values: names, states, numbers) needs no escaping and starts no process.
json_str() {
  case "$1" in
    *[!\ -~]* | *[\"\\]*)
      printf '%s' "$1" | json_escape | awk 'BEGIN { ORS = ""; printf "\"" } { if (NR > 1) printf "\\n"; printf "%s", $0 } END { printf "\"" }' ;;
    *) printf '"%s"' "$1" ;;
  esac
}
# json_lines_array: stdin lines (at most 50) as a JSON array of strings.
json_lines_array() {
  json_escape | awk 'BEGIN { printf "[" } NR <= 50 { printf "%s\"%s\"", (NR > 1 ? "," : ""), $0 } END { printf "]" }'
}
# count_lines: the number of lines on stdin, a last line without a newline included (0 for none).
count_lines() {
  grep -c '' || true
}
# not_applicable REASON: report that the check does not apply here, and stop.
not_applicable() {
  printf '{"applicable":false,"reason":%s}\n' "$(json_str "$1")"
  exit 0
}
# sshd_option NAME DEFAULT: the effective value of an sshd option (lowercase), from `sshd -T` or the config.
sshd_option() {
  value=""
  if command -v sshd >/dev/null 2>&1; then
    # `sshd -T` is the slow part: run it once per script, and once per batch of detect scripts
    # (the batch's private directory, OSIRIS_BATCH_DIR, keeps its output for the others).
    if [ -z "${osiris_sshd_t+set}" ]; then
      if [ -n "${OSIRIS_BATCH_DIR:-}" ] && [ -f "$OSIRIS_BATCH_DIR/sshd-T" ]; then
        osiris_sshd_t=$(cat "$OSIRIS_BATCH_DIR/sshd-T")
      else
        osiris_sshd_t=$(sshd -T 2>/dev/null || true)
        if [ -n "${OSIRIS_BATCH_DIR:-}" ] && [ -d "$OSIRIS_BATCH_DIR" ]; then
          printf '%s\n' "$osiris_sshd_t" > "$OSIRIS_BATCH_DIR/sshd-T"
        fi
      fi
    fi
    value=$(printf '%s\n' "$osiris_sshd_t" | awk -v k="$1" 'tolower($1) == k { $1 = ""; sub(/^ /, ""); print tolower($0); exit }')
  fi
  if [ -z "$value" ] && [ -r /etc/ssh/sshd_config ]; then
    value=$(cat /etc/ssh/sshd_config /etc/ssh/sshd_config.d/*.conf 2>/dev/null |
      awk -v k="$1" 'tolower($1) == k { $1 = ""; sub(/^[ \t]+/, ""); print tolower($0); exit }')
  fi
  # Lowercase, as sshd -T prints it (awk lowered what it found; a default may need it).
  [ -n "$value" ] || value="$2"
  case "$value" in
    *[A-Z]*) printf '%s' "$value" | tr 'A-Z' 'a-z' ;;
    *) printf '%s' "$value" ;;
  esac
}
require_sshd() {
  if ! command -v sshd >/dev/null 2>&1 && [ ! -e /etc/ssh/sshd_config ]; then
    not_applicable "OpenSSH server is not installed"
  fi
}
# require_root WHAT: stop with an error (never a verdict) when not running as root, because WHAT cannot be read fully.
require_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "reading $1 needs root: run osiris as root" >&2
    exit 3
  fi
}
# --- Remediation helpers (used by remediate/rollback scripts; they run as root). ---
OSIRIS_BACKUP_DIR=/var/backups/osiris
# backup_file FILE NAME: copy FILE to the backup directory as NAME (the newest backup wins).
backup_file() {
  mkdir -p "$OSIRIS_BACKUP_DIR" && chmod 700 "$OSIRIS_BACKUP_DIR"
  cp -p "$1" "$OSIRIS_BACKUP_DIR/$2"
}
# restore_file FILE NAME: put back the backup NAME of FILE.
restore_file() {
  [ -e "$OSIRIS_BACKUP_DIR/$2" ] || { echo "no backup $2 to restore" >&2; exit 4; }
  cp -p "$OSIRIS_BACKUP_DIR/$2" "$1"
}
# reload_sshd: make a running sshd re-read its configuration.
reload_sshd() {
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl reload ssh 2>/dev/null || systemctl reload sshd
  elif [ -r /run/sshd.pid ]; then
    kill -HUP "$(cat /run/sshd.pid)"
  else
    pkill -HUP -o -x sshd
  fi
}
# sshd_set OPTION VALUE: make OPTION effective with VALUE: every other setting of it (main file and
# drop-ins) is commented out and the new line goes first (sshd takes the first value it reads).
# The old files are backed up once per run; a configuration sshd rejects is rolled back at once.
sshd_set() {
  [ -w /etc/ssh/sshd_config ] || { echo "/etc/ssh/sshd_config is not writable" >&2; exit 4; }
  backup_file /etc/ssh/sshd_config sshd_config
  for file in /etc/ssh/sshd_config /etc/ssh/sshd_config.d/*.conf; do
    [ -f "$file" ] || continue
    sed -i -E "s/^[[:space:]]*($1)[[:space:]]/# osiris: \1 /I" "$file"
  done
  { printf '%s %s\n' "$1" "$2"; cat /etc/ssh/sshd_config; } > /etc/ssh/sshd_config.osiris-new
  chmod --reference=/etc/ssh/sshd_config /etc/ssh/sshd_config.osiris-new
  mv /etc/ssh/sshd_config.osiris-new /etc/ssh/sshd_config
  # sshd's complaint is kept in a variable, never a predictable file under /tmp.
  if ! rejected=$(sshd -t 2>&1 >/dev/null); then
    restore_file /etc/ssh/sshd_config sshd_config
    echo "sshd rejected the change, restored: $rejected" >&2
    exit 5
  fi
}
# suid_unexpected [full]: SUID/SGID files under OSIRIS_PARAM_SEARCH_PATHS that are not in
# OSIRIS_PARAM_BASELINE (both comma-separated absolute paths), one per line; exits 2 on a malformed
# parameter. The whole tree is walked at most every OSIRIS_PARAM_FULL_WALK_HOURS (and always with
# `full`); in between only what changed since that walk is looked at (suid_changed).
suid_unexpected() {
  case "${OSIRIS_PARAM_BASELINE:-}" in
    *[!A-Za-z0-9/._+@,\ -]* ) echo "baseline may hold only absolute paths separated by commas: fix the parameter" >&2; exit 2 ;;
  esac
  case "${OSIRIS_PARAM_SEARCH_PATHS:-}" in
    *[!A-Za-z0-9/._+@,-]* | '' ) echo "search_paths may hold only absolute paths separated by commas: fix the parameter" >&2; exit 2 ;;
  esac
  suid_dirs=""
  for suid_dir in $(printf '%s' "$OSIRIS_PARAM_SEARCH_PATHS" | tr ',' ' '); do
    case "$suid_dir" in /*) ;; *) echo "search path $suid_dir is not absolute" >&2; exit 2 ;; esac
    [ -d "$suid_dir" ] && [ ! -L "$suid_dir" ] && suid_dirs="$suid_dirs $suid_dir"
  done
  [ -n "$suid_dirs" ] || return 0
  suid_list=",$(printf '%s' "$OSIRIS_PARAM_BASELINE" | tr -d ' '),"
  suid_found "${1:-}" | sort -u | while IFS= read -r suid_file; do
    case "$suid_list" in *",$suid_file,"*) ;; *) printf '%s\n' "$suid_file" ;; esac
  done
}
# suid_found [full]: every SUID/SGID file under $suid_dirs, one per line (possibly repeated).
# A full walk stats every file. It also leaves, in a root-only state directory, the list of every
# directory it saw, the SUID/SGID files it found and a stamp of its start; the walks that follow
# (until the next full one) stat only those directories, read the ones whose change time is newer
# than the stamp (an entry added, removed or renamed changes it, and a change time cannot be set
# back), walk whole any directory that is new, and look again at the files found before. What
# this does not see between full walks: the mode of an existing file changed in place (chmod).
suid_found() {
  suid_state=/var/cache/osiris-scan
  suid_key=$(printf '%s' "$suid_dirs" | cksum | cut -d ' ' -f 1)
  suid_prefix="$suid_state/suid-$suid_key"
  suid_hours=${OSIRIS_PARAM_FULL_WALK_HOURS:-24}
  case "$suid_hours" in '' | *[!0-9]*) echo "full_walk_hours must be a whole number" >&2; exit 2 ;; esac
  # The incremental walk needs GNU find and coreutils (-fprint0, -cnewer, sort -z, comm -z) and a
  # state directory that is ours alone; without them every walk is a full one, uncached.
  if ! mkdir -p -m 700 "$suid_state" 2>/dev/null || [ -L "$suid_state" ] || [ ! -O "$suid_state" ] ||
    ! find / -maxdepth 0 -fprint0 /dev/null 2>/dev/null || ! printf 'a\000' | sort -z >/dev/null 2>&1 ||
    ! printf 'a\000' | comm -z -23 - /dev/null >/dev/null 2>&1; then
    # shellcheck disable=SC2086
    find $suid_dirs -xdev \( -path /nix/store \) -prune -o -type f \( -perm -4000 -o -perm -2000 \) -print 2>/dev/null
    return 0
  fi
  chmod 700 "$suid_state"
  if [ "${1:-}" = full ] || [ ! -f "$suid_prefix.stamp" ] || [ ! -f "$suid_prefix.dirs" ] || [ ! -f "$suid_prefix.found" ] ||
    [ -n "$(find "$suid_prefix.stamp" -mmin "+$((suid_hours * 60))" 2>/dev/null)" ]; then
    : > "$suid_prefix.stamp.new"
    # shellcheck disable=SC2086
    find $suid_dirs -xdev \( -path /nix/store \) -prune -o -type d -fprint0 "$suid_prefix.dirs.new" -o \
      -type f \( -perm -4000 -o -perm -2000 \) -print 2>/dev/null > "$suid_prefix.found.new"
    sort -z -o "$suid_prefix.dirs.new" "$suid_prefix.dirs.new"
    mv "$suid_prefix.dirs.new" "$suid_prefix.dirs"
    mv "$suid_prefix.found.new" "$suid_prefix.found"
    mv "$suid_prefix.stamp.new" "$suid_prefix.stamp"
    cat "$suid_prefix.found"
    return 0
  fi
  suid_changed
}
# suid_changed: the incremental walk of suid_found (its state in $suid_prefix.*).
suid_changed() {
  # The files found before, if they still are SUID/SGID files.
  tr '\n' '\000' < "$suid_prefix.found" |
    xargs -0 -r sh -c 'find "$@" -maxdepth 0 -type f \( -perm -4000 -o -perm -2000 \) -print 2>/dev/null' osiris-suid
  # The known directories whose entries changed since the full walk (one stat each), in as few
  # `find`s as the argument space allows (xargs's default 128 KiB would start one per 3,000).
  xargs -0 -r -s 1000000 sh -c 'find "$@" -maxdepth 0 -type d -cnewer "$0" -print0 2>/dev/null' "$suid_prefix.stamp" \
    < "$suid_prefix.dirs" 2>/dev/null > "$suid_prefix.changed"
  [ -s "$suid_prefix.changed" ] || return 0
  # Their SUID/SGID files, and the directories in them that the full walk did not see, walked whole.
  xargs -0 -r sh -c 'find "$@" -mindepth 1 -maxdepth 1 -type f \( -perm -4000 -o -perm -2000 \) -print 2>/dev/null' osiris-suid \
    < "$suid_prefix.changed"
  xargs -0 -r sh -c 'find "$@" -mindepth 1 -maxdepth 1 -xdev -type d -print0 2>/dev/null' osiris-suid < "$suid_prefix.changed" |
    sort -z | comm -z -23 - "$suid_prefix.dirs" |
    xargs -0 -r sh -c 'find "$@" -xdev \( -path /nix/store \) -prune -o -type f \( -perm -4000 -o -perm -2000 \) -print 2>/dev/null' osiris-suid
}
