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
# json_lines TEXT: sets json_array to TEXT's lines (at most 50) as a JSON array of strings, as
# json_lines_array gives it, and json_count to their number, with builtins: a process starts
# only for a line that needs escaping.
json_lines() {
  json_array="["
  json_count=0
  if [ -n "$1" ]; then
    while IFS= read -r json_line; do
      json_count=$((json_count + 1))
      [ "$json_count" -le 50 ] || continue
      [ "$json_count" = 1 ] || json_array="$json_array,"
      case "$json_line" in
        *[!\ -~]* | *[\"\\]*) json_array="$json_array$(json_str "$json_line")" ;;
        *) json_array="$json_array\"$json_line\"" ;;
      esac
    done <<EOF
$1
EOF
  fi
  json_array="$json_array]"
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
# sshd_t_cached: true when the batch's copy of `sshd -T`'s output ($sshd_t_src) is there and not
# empty, running `sshd -T` for it when no check of the batch did yet (it is the slow part).
sshd_t_cached() {
  { [ -n "${OSIRIS_BATCH_DIR:-}" ] && [ -d "$OSIRIS_BATCH_DIR" ] && command -v sshd >/dev/null 2>&1; } || return 1
  sshd_t_src="$OSIRIS_BATCH_DIR/sshd-T"
  [ -f "$sshd_t_src" ] || { sshd -T 2>/dev/null || true; } > "$sshd_t_src"
  [ -s "$sshd_t_src" ]
}
# sshd_option NAME DEFAULT: the effective value of an sshd option (lowercase), from `sshd -T` or the config.
sshd_option() {
  value=""
  if sshd_t_cached; then
    value=$(awk -v k="$1" 'tolower($1) == k { $1 = ""; sub(/^ /, ""); print tolower($0); exit }' "$sshd_t_src")
  elif [ -z "${sshd_t_src:-}" ] && command -v sshd >/dev/null 2>&1; then
    # Outside a batch: once per script.
    [ -n "${osiris_sshd_t+set}" ] || osiris_sshd_t=$(sshd -T 2>/dev/null || true)
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
  # A batch tells its checks the user they run as (OSIRIS_EUID): no `id` process per check.
  if [ "${OSIRIS_EUID:-$(id -u)}" != 0 ]; then
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
# OSIRIS_PARAM_BASELINE (both comma-separated absolute paths), one per line, sorted; exits 2 on a
# malformed parameter. The whole tree is walked at most every OSIRIS_PARAM_FULL_WALK_HOURS (and
# always with `full`); in between only what changed since the last walk is looked at.
suid_unexpected() {
  case "${OSIRIS_PARAM_BASELINE:-}" in
    *[!A-Za-z0-9/._+@,\ -]* ) echo "baseline may hold only absolute paths separated by commas: fix the parameter" >&2; exit 2 ;;
  esac
  case "${OSIRIS_PARAM_SEARCH_PATHS:-}" in
    *[!A-Za-z0-9/._+@,-]* | '' ) echo "search_paths may hold only absolute paths separated by commas: fix the parameter" >&2; exit 2 ;;
  esac
  suid_dirs=""
  suid_ifs=$IFS
  IFS=,
  for suid_dir in $OSIRIS_PARAM_SEARCH_PATHS; do
    case "$suid_dir" in /*) ;; *) IFS=$suid_ifs; echo "search path $suid_dir is not absolute" >&2; exit 2 ;; esac
    [ -d "$suid_dir" ] && [ ! -L "$suid_dir" ] && suid_dirs="$suid_dirs $suid_dir"
  done
  IFS=$suid_ifs
  [ -n "$suid_dirs" ] || return 0
  suid_list=",$OSIRIS_PARAM_BASELINE,"
  case "$suid_list" in *" "*) suid_list=$(printf '%s' "$suid_list" | tr -d ' ') ;; esac
  # Into a variable first: an error of the walk (a malformed parameter, a held lock) ends the
  # script with its status instead of vanishing in a pipeline.
  suid_all=$(suid_found "${1:-}") || exit
  [ -n "$suid_all" ] || return 0
  while IFS= read -r suid_file; do
    case "$suid_list" in *",$suid_file,"*) ;; *) printf '%s\n' "$suid_file" ;; esac
  done <<EOF
$suid_all
EOF
}
# suid_found [full]: every SUID/SGID file under $suid_dirs, one per line, sorted, each once.
# A full walk stats every file. It also leaves, in a root-only state directory, the list of every
# directory it saw, the SUID/SGID files it found and a stamp of its start; each walk that follows
# (until the next full one) stats only those directories (one `stat` for all), reads the ones
# whose change time is not older than the last walk's stamp (an entry added, removed or renamed
# changes it, and a change time cannot be set back), walks whole any directory that is new, looks
# again at the files found before, and moves the stamp and the lists forward, so the next walk
# reads only what changed since this one. What this does not see between full walks: the mode of
# an existing file changed in place (chmod). Walks of the same paths take turns (flock).
suid_found() {
  suid_arg=${1:-}
  suid_state=/var/cache/osiris-scan
  # The state is kept per set of search paths, named after them with builtins: `/` becomes `=`
  # and each path starts with `%` (neither may occur in a search path); a cksum when too long.
  suid_key=""
  suid_ifs=$IFS
  for suid_dir in $suid_dirs; do
    IFS=/
    # shellcheck disable=SC2086
    set -- $suid_dir
    IFS==
    suid_key="$suid_key%$*"
    IFS=$suid_ifs
  done
  if [ "${#suid_key}" -gt 200 ]; then
    suid_key=$(printf '%s' "$suid_dirs" | cksum)
    suid_key="cksum-${suid_key%% *}"
  fi
  suid_prefix="$suid_state/walk-$suid_key"
  suid_hours=${OSIRIS_PARAM_FULL_WALK_HOURS:-24}
  case "$suid_hours" in '' | *[!0-9]*) echo "full_walk_hours must be a whole number" >&2; exit 2 ;; esac
  if ! { [ -d "$suid_state" ] || mkdir -p -m 700 "$suid_state" 2>/dev/null; } || [ -L "$suid_state" ] ||
    [ ! -O "$suid_state" ] || ! command -v flock >/dev/null 2>&1; then
    suid_uncached
    return 0
  fi
  suid_locked "$suid_arg" 9> "$suid_prefix.lock"
}
# suid_uncached: a full walk that keeps nothing (no state directory of our own, or tools missing).
suid_uncached() {
  # shellcheck disable=SC2086
  find $suid_dirs -xdev \( -path /nix/store \) -prune -o -type f \( -perm -4000 -o -perm -2000 \) -print 2>/dev/null | sort -u
}
# suid_ns VALUE: VALUE is a time as `stat --printf '%.9Y'` gives it (seconds.nanoseconds).
suid_ns() {
  case "$1" in
    [0-9]*.[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]) case "${1%.*}" in *[!0-9]*) return 1 ;; esac ;;
    *) return 1 ;;
  esac
}
# suid_locked [full]: suid_found's cached walk, holding the lock on file descriptor 9.
suid_locked() {
  flock -w 100 9 || { echo "another scan has held the SUID walk's state for 100 s: try again" >&2; exit 1; }
  suid_mode=${1:-}
  : > "$suid_prefix.stamp.new"
  suid_since=""
  if [ "$suid_mode" != full ] && [ -f "$suid_prefix.stamp" ] && [ -f "$suid_prefix.full" ] &&
    [ -f "$suid_prefix.dirs" ] && [ -f "$suid_prefix.found" ]; then
    # Now (the new stamp), the last walk and the last full walk, in one process.
    # shellcheck disable=SC2046
    set -- $(stat --printf '%.9Y\n' "$suid_prefix.stamp.new" "$suid_prefix.stamp" "$suid_prefix.full" 2>/dev/null)
    # Incremental only while the last full walk is recent and no stamp lies in the future (a
    # clock set back would otherwise hide what changed in between).
    if [ $# = 3 ] && suid_ns "$1" && suid_ns "$2" && suid_ns "$3" && [ "${2%.*}" -le "${1%.*}" ] &&
      [ "${3%.*}" -le "${1%.*}" ] && [ $((${1%.*} - ${3%.*})) -lt $((suid_hours * 3600)) ]; then
      suid_since=$2
    fi
  fi
  if [ -n "$suid_since" ]; then
    suid_changed && return 0
  fi
  # A full walk; it checks first that the tools the incremental ones need are there (GNU find and
  # coreutils: -fprint0, -printf, sort -z, comm -z, stat with nanoseconds; an awk that reads
  # NUL-separated records); without them it keeps no state and every walk is a full one.
  if ! find / -maxdepth 0 -fprint0 /dev/null 2>/dev/null || ! suid_ns "$(stat --printf '%.9Y' / 2>/dev/null)" ||
    [ "$(printf 'b\000a\000' | sort -z | comm -z -23 - /dev/null | awk 'BEGIN { RS = "\0" } { printf "%s", $0 }' 2>/dev/null)" != ab ]; then
    rm -f "$suid_prefix.full"
    suid_uncached
    return 0
  fi
  chmod 700 "$suid_state"
  # The state files of older versions (named by cksum alone).
  rm -f "$suid_state"/suid-[0-9]*
  # shellcheck disable=SC2086
  find $suid_dirs -xdev \( -path /nix/store \) -prune -o -type d -fprint0 "$suid_prefix.dirs.new" -o \
    -type f \( -perm -4000 -o -perm -2000 \) -print 2>/dev/null | sort -u > "$suid_prefix.found.new"
  sort -z -o "$suid_prefix.dirs.new" "$suid_prefix.dirs.new"
  mv "$suid_prefix.dirs.new" "$suid_prefix.dirs"
  mv "$suid_prefix.found.new" "$suid_prefix.found"
  cp -p "$suid_prefix.stamp.new" "$suid_prefix.full"
  mv "$suid_prefix.stamp.new" "$suid_prefix.stamp"
  while IFS= read -r suid_file; do printf '%s\n' "$suid_file"; done < "$suid_prefix.found"
}
# suid_changed: the incremental walk (its state in $suid_prefix.*, the last walk's time in
# $suid_since): prints every SUID/SGID file it knows of and moves the state forward; fails, so
# that a full walk runs instead, when a tool it needs did not run.
suid_changed() {
  # The files found before, if they still are SUID/SGID files (test's builtins: no process).
  suid_kept=""
  suid_dropped=0
  while IFS= read -r suid_file; do
    if [ -f "$suid_file" ] && [ ! -L "$suid_file" ] && { [ -u "$suid_file" ] || [ -g "$suid_file" ]; }; then
      suid_kept="$suid_kept$suid_file
"
    else
      suid_dropped=1
    fi
  done < "$suid_prefix.found"
  # The known directories whose entries changed since the last walk: one stat each, by one
  # `stat` for all of them (up to 2 MB of names: xargs's default 128 KiB would start one `stat`
  # per 3,000), compared as fixed-width strings (seconds.nanoseconds: awk's numbers would round them). Not older, rather
  # than newer: a change in the same clock tick as the stamp is read again, never missed.
  { xargs -0 -r -s 2000000 stat --printf '%.9Z %n\0' < "$suid_prefix.dirs" 2>/dev/null; echo "$?" > "$suid_prefix.xargs"; } |
    awk -v since="$suid_since" 'BEGIN { RS = "\0"; ORS = "\0" } ($1 "") >= (since "") { print substr($0, index($0, " ") + 1) }' \
    > "$suid_prefix.changed" || return 1
  read -r suid_status < "$suid_prefix.xargs" || return 1
  # 0, or 123 when a directory is gone; 126 or 127: `stat` could not run.
  case "$suid_status" in 0 | 123) ;; *) return 1 ;; esac
  if [ -s "$suid_prefix.changed" ]; then
    # In one pass over the changed directories: their SUID/SGID files (f) and subdirectories (d).
    xargs -0 -r sh -c 'find "$@" -mindepth 1 -maxdepth 1 \( -type f \( -perm -4000 -o -perm -2000 \) -printf "f%p\0" \) -o \( -type d -printf "d%p\0" \) 2>/dev/null' osiris-suid \
      < "$suid_prefix.changed" |
      awk -v df="$suid_prefix.sub" -v ff="$suid_prefix.more" 'BEGIN { RS = "\0"; printf "" > df; printf "" > ff }
        /^d/ { ORS = "\0"; print substr($0, 2) > df; next } /^f/ { ORS = "\n"; print substr($0, 2) > ff }' || return 1
    # The subdirectories no walk saw yet, walked whole (a directory created, moved or renamed).
    sort -z "$suid_prefix.sub" | comm -z -23 - "$suid_prefix.dirs" > "$suid_prefix.new"
    if [ -s "$suid_prefix.new" ]; then
      xargs -0 -r sh -c 'find "$@" -xdev \( -path /nix/store \) -prune -o -type d -printf "d%p\0" -o -type f \( -perm -4000 -o -perm -2000 \) -printf "f%p\0" 2>/dev/null' \
        osiris-suid < "$suid_prefix.new" |
        awk -v df="$suid_prefix.sub" -v ff="$suid_prefix.more" 'BEGIN { RS = "\0"; printf "" > df }
          /^d/ { ORS = "\0"; print substr($0, 2) > df; next } /^f/ { ORS = "\n"; print substr($0, 2) >> ff }' || return 1
      sort -z "$suid_prefix.sub" | sort -z -m -u - "$suid_prefix.dirs" > "$suid_prefix.dirs.new" || return 1
      mv "$suid_prefix.dirs.new" "$suid_prefix.dirs"
    fi
    printf '%s' "$suid_kept" | sort -u - "$suid_prefix.more" > "$suid_prefix.found.new" || return 1
    mv "$suid_prefix.found.new" "$suid_prefix.found"
    mv "$suid_prefix.stamp.new" "$suid_prefix.stamp"
    while IFS= read -r suid_file; do printf '%s\n' "$suid_file"; done < "$suid_prefix.found"
    return 0
  fi
  if [ "$suid_dropped" = 1 ]; then
    printf '%s' "$suid_kept" > "$suid_prefix.found.new"
    mv "$suid_prefix.found.new" "$suid_prefix.found"
  fi
  mv "$suid_prefix.stamp.new" "$suid_prefix.stamp"
  printf '%s' "$suid_kept"
}
