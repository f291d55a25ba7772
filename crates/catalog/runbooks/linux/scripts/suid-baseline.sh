# Detect: set-user-ID and set-group-ID files where programs live (OSIRIS_PARAM_SEARCH_PATHS) that are not in the baseline.
require_root "every program directory"
suid_unexpected > "${TMPDIR:-/tmp}/osiris-suid.$$"
count=$(wc -l < "${TMPDIR:-/tmp}/osiris-suid.$$" | tr -d ' ')
printf '{"unexpected":%s,"count":%s}\n' "$(json_lines_array < "${TMPDIR:-/tmp}/osiris-suid.$$")" "$count"
rm -f "${TMPDIR:-/tmp}/osiris-suid.$$"
