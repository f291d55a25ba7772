# Detect: owner and mode of the account databases.
problems=""
check() { # file allowed-modes...
  file=$1; shift
  [ -e "$file" ] || return 0
  mode=$(stat -c '%a' "$file")
  owner=$(stat -c '%U' "$file")
  ok=no
  for allowed in "$@"; do [ "$mode" = "$allowed" ] && ok=yes; done
  [ "$ok" = yes ] || problems="$problems$file mode $mode (allowed: $*)
"
  [ "$owner" = root ] || problems="$problems$file owned by $owner, not root
"
}
check /etc/shadow 640 600 400 0
check /etc/gshadow 640 600 400 0
check /etc/passwd 644
check /etc/group 644
printf '{"problems":%s}\n' "$(printf '%s' "$problems" | json_lines_array)"
