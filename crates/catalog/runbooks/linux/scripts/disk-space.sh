# Detect: real file systems whose usage is above OSIRIS_PARAM_THRESHOLD_PERCENT.
threshold=${OSIRIS_PARAM_THRESHOLD_PERCENT:-90}
usage=$(df -P -x tmpfs -x devtmpfs -x squashfs -x overlay -x proc -x sysfs 2>/dev/null | awk 'NR > 1 && $2 > 0 { gsub(/%/, "", $5); print $5, $6 }')
if [ -z "$usage" ]; then
  usage=$(df -P / | awk 'NR > 1 { gsub(/%/, "", $5); print $5, $6 }')
fi
case "$threshold" in '' | *[!0-9]*) echo "threshold_percent must be a whole number" >&2; exit 2 ;; esac
# The largest usage and those over the threshold with the shell's own arithmetic (no process).
max=0
over=""
while read -r used mount; do
  case "$used" in '' | *[!0-9]*) continue ;; esac
  [ "$used" -gt "$max" ] && max=$used
  [ "$used" -gt "$threshold" ] && over="${over:+$over
}$mount $used%"
done <<EOF
$usage
EOF
json_lines "$over"
printf '{"max_used_percent":%s,"threshold_percent":%s,"over_threshold":%s}\n' "$max" "$threshold" "$json_array"
