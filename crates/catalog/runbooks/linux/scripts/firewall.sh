# Detect: which packet filter is loaded and its policy for inbound traffic.
require_root "the packet filter rules"
tool=none
policy=none
rules=0
if command -v nft >/dev/null 2>&1 && ruleset=$(nft list ruleset 2>/dev/null) && [ -n "$ruleset" ]; then
  tool=nft
  rules=$(printf '%s\n' "$ruleset" | grep -cE '^\s+(ip|ip6|tcp|udp|ct|iif|iifname|meta|counter|accept|drop|reject|jump)' || true)
  policy=$(printf '%s\n' "$ruleset" | awk '/hook input/ { for (i = 1; i <= NF; i++) if ($i == "policy") { p = $(i + 1); gsub(/;/, "", p); print p; exit } }')
  [ -n "$policy" ] || policy=accept
elif command -v iptables >/dev/null 2>&1 && ruleset=$(iptables -S INPUT 2>/dev/null); then
  tool=iptables
  rules=$(printf '%s\n' "$ruleset" | grep -c '^-A' || true)
  policy=$(printf '%s\n' "$ruleset" | awk '$1 == "-P" { print tolower($3); exit }')
fi
printf '{"tool":%s,"input_policy":%s,"rules":%s}\n' "$(json_str "$tool")" "$(json_str "$policy")" "${rules:-0}"
