# Detect: set-user-ID and set-group-ID files on the root filesystem that are not in the baseline.
require_root "every directory on the root filesystem"
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
suid_unexpected > "${TMPDIR:-/tmp}/osiris-suid.$$"
count=$(wc -l < "${TMPDIR:-/tmp}/osiris-suid.$$" | tr -d ' ')
printf '{"unexpected":%s,"count":%s}\n' "$(json_lines_array < "${TMPDIR:-/tmp}/osiris-suid.$$")" "$count"
rm -f "${TMPDIR:-/tmp}/osiris-suid.$$"
