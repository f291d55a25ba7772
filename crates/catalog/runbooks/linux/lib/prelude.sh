# Shared helpers, prepended to every sh script of this platform by the catalogue.
# Scripts print exactly one JSON object on stdout; these helpers keep that output valid.
set -u
export LC_ALL=C PATH="/usr/sbin:/usr/bin:/sbin:/bin:${PATH:-}"
# json_escape: stdin with JSON string escaping (backslash, quote); control characters other than newline become `?`.
json_escape() {
  tr '\001-\011\013-\037\177' '?' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g'
}
# json_str VALUE: VALUE as one JSON string (newlines kept as \n).
json_str() {
  printf '%s' "$1" | json_escape | awk 'BEGIN { ORS = ""; printf "\"" } { if (NR > 1) printf "\\n"; printf "%s", $0 } END { printf "\"" }'
}
# json_lines_array: stdin lines (at most 50) as a JSON array of strings.
json_lines_array() {
  head -n 50 | json_escape | awk 'BEGIN { printf "[" } { printf "%s\"%s\"", (NR > 1 ? "," : ""), $0 } END { printf "]" }'
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
    # `sshd -T` is the slow part: run it once per script.
    [ -n "${osiris_sshd_t+set}" ] || osiris_sshd_t=$(sshd -T 2>/dev/null || true)
    value=$(printf '%s\n' "$osiris_sshd_t" | awk -v k="$1" 'tolower($1) == k { $1 = ""; sub(/^ /, ""); print; exit }')
  fi
  if [ -z "$value" ] && [ -r /etc/ssh/sshd_config ]; then
    value=$(cat /etc/ssh/sshd_config /etc/ssh/sshd_config.d/*.conf 2>/dev/null |
      awk -v k="$1" 'tolower($1) == k { $1 = ""; sub(/^[ \t]+/, ""); print; exit }')
  fi
  [ -n "$value" ] || value="$2"
  printf '%s' "$value" | tr 'A-Z' 'a-z'
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
# suid_unexpected: SUID/SGID files under OSIRIS_PARAM_SEARCH_PATHS that are not in OSIRIS_PARAM_BASELINE
# (both comma-separated absolute paths), one per line; exits 2 on a malformed parameter.
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
  # shellcheck disable=SC2086
  find $suid_dirs -xdev \( -path /nix/store \) -prune -o -type f \( -perm -4000 -o -perm -2000 \) -print 2>/dev/null |
    sort -u | while IFS= read -r suid_file; do
      case "$suid_list" in *",$suid_file,"*) ;; *) printf '%s\n' "$suid_file" ;; esac
    done
}
