# Detect: pam_faillock (or pam_tally2) in the PAM auth stack and its `deny` threshold (0 = never locks).
stack=""
for file in /etc/pam.d/common-auth /etc/pam.d/system-auth; do
  [ -r "$file" ] && stack="$stack $file"
done
[ -n "$stack" ] || not_applicable "no PAM auth stack (/etc/pam.d/common-auth or system-auth)"
# shellcheck disable=SC2086
lines=$(awk '{ sub(/#.*/, "") } $1 == "auth" || $1 == "-auth"' $stack)
module=none
deny=0
if case "$lines" in *pam_faillock.so*) true ;; *) false ;; esac; then
  module=faillock
  # faillock.conf applies first; an argument on the PAM line overrides it. pam_faillock's default is 3.
  deny=3
  conf=$(awk -F= '$1 ~ /^[[:space:]]*deny[[:space:]]*$/ { gsub(/[[:space:]]/, "", $2); v = $2 } END { print v }' /etc/security/faillock.conf 2>/dev/null)
  [ -n "$conf" ] && deny=$conf
  arg=$(printf '%s\n' "$lines" | grep 'pam_faillock\.so' | tr -s '[:blank:]' '\n' | sed -n 's/^deny=//p' | tail -n 1)
  [ -n "$arg" ] && deny=$arg
elif case "$lines" in *pam_tally2.so*) true ;; *) false ;; esac; then
  module=tally2
  arg=$(printf '%s\n' "$lines" | grep 'pam_tally2\.so' | tr -s '[:blank:]' '\n' | sed -n 's/^deny=//p' | tail -n 1)
  [ -n "$arg" ] && deny=$arg
fi
case "$deny" in
  '' | *[!0-9]* ) printf '{"module":%s,"deny":%s}\n' "$(json_str "$module")" "$(json_str "$deny")"; exit 0 ;;
esac
printf '{"module":%s,"deny":%s}\n' "$(json_str "$module")" "$deny"
