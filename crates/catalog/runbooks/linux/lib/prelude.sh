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
# not_applicable REASON: report that the check does not apply here, and stop.
not_applicable() {
  printf '{"applicable":false,"reason":%s}\n' "$(json_str "$1")"
  exit 0
}
# sshd_option NAME DEFAULT: the effective value of an sshd option (lowercase), from `sshd -T` or the config.
sshd_option() {
  value=""
  if command -v sshd >/dev/null 2>&1; then
    value=$(sshd -T 2>/dev/null | awk -v k="$1" 'tolower($1) == k { $1 = ""; sub(/^ /, ""); print; exit }')
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
