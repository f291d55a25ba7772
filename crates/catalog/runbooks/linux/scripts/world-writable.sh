# Detect: world-writable files (not symlinks) under /etc.
require_root "every directory under /etc"
# Kept in a variable, never a file: a predictable temporary path is a root-write primitive.
found=$(find /etc -xdev -type f -perm -0002 2>/dev/null | sort)
json_lines "$found"
printf '{"world_writable":%s,"count":%s}\n' "$json_array" "$json_count"
