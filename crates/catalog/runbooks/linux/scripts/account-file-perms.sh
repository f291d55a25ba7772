# Detect: owner and mode of the account databases.
problems=""
# One `stat` for the files that exist: path, mode and owner, a line each, in this order.
set --
for file in /etc/shadow /etc/gshadow /etc/passwd /etc/group; do
  [ -e "$file" ] && set -- "$@" "$file"
done
[ $# -eq 0 ] || while read -r file mode owner; do
  [ -n "$file" ] || continue
  case "$file" in
    /etc/shadow | /etc/gshadow) allowed_modes="640 600 400 0" ;;
    *) allowed_modes="644" ;;
  esac
  ok=no
  for allowed in $allowed_modes; do [ "$mode" = "$allowed" ] && ok=yes; done
  [ "$ok" = yes ] || problems="$problems$file mode $mode (allowed: $allowed_modes)
"
  [ "$owner" = root ] || problems="$problems$file owned by $owner, not root
"
done <<EOF
$(stat -c '%n %a %U' "$@")
EOF
json_lines "$problems"
printf '{"problems":%s}\n' "$json_array"
