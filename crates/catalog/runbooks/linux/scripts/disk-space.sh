# Detect: real file systems whose usage is above OSIRIS_PARAM_THRESHOLD_PERCENT.
threshold=${OSIRIS_PARAM_THRESHOLD_PERCENT:-90}
usage=$(df -P -x tmpfs -x devtmpfs -x squashfs -x overlay -x proc -x sysfs 2>/dev/null | awk 'NR > 1 && $2 > 0 { gsub(/%/, "", $5); print $5, $6 }')
if [ -z "$usage" ]; then
  usage=$(df -P / | awk 'NR > 1 { gsub(/%/, "", $5); print $5, $6 }')
fi
# The largest usage with the shell's own arithmetic (no process).
max=0
while read -r used _mount; do
  case "$used" in '' | *[!0-9]*) continue ;; esac
  [ "$used" -gt "$max" ] && max=$used
done <<EOF
$usage
EOF
printf '{"max_used_percent":%s,"threshold_percent":%s,"over_threshold":%s}\n' "$max" "$threshold" \
  "$(printf '%s\n' "$usage" | awk -v t="$threshold" '$1 > t { print $2 " " $1 "%" }' | json_lines_array)"
