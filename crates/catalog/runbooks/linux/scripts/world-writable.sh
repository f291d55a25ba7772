# Detect: world-writable files (not symlinks) under /etc.
require_root "every directory under /etc"
find /etc -xdev -type f -perm -0002 2>/dev/null | sort > "${TMPDIR:-/tmp}/osiris-ww.$$"
count=$(wc -l < "${TMPDIR:-/tmp}/osiris-ww.$$" | tr -d ' ')
printf '{"world_writable":%s,"count":%s}\n' "$(json_lines_array < "${TMPDIR:-/tmp}/osiris-ww.$$")" "$count"
rm -f "${TMPDIR:-/tmp}/osiris-ww.$$"
