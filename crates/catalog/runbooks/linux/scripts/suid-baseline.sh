# Detect: set-user-ID and set-group-ID files where programs live (OSIRIS_PARAM_SEARCH_PATHS) that are not in the baseline.
require_root "every program directory"
# Kept in a variable, never a file: a predictable temporary path is a root-write primitive.
unexpected=$(suid_unexpected) || exit
json_lines "$unexpected"
printf '{"unexpected":%s,"count":%s}\n' "$json_array" "$json_count"
