# Detect: days after password expiry before an account is disabled (`useradd -D` INACTIVE; -1 means never).
command -v useradd >/dev/null 2>&1 || not_applicable "useradd is not installed (no shadow password suite)"
# What `useradd -D` prints, read as it reads it: the last `INACTIVE=` line of /etc/default/useradd
# (no spaces around `=`), -1 when there is none or it is not a number (useradd ignores it then).
days=""
if [ -r /etc/default/useradd ]; then
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in INACTIVE=*) days=${line#INACTIVE=} ;; esac
  done < /etc/default/useradd
fi
case "$days" in -[0-9]* | [0-9]*) case "${days#-}" in *[!0-9]*) days=-1 ;; esac ;; *) days=-1 ;; esac
case "$days" in
  '' ) days=-1 ;;
  -1 ) ;;
  *[!0-9]* ) printf '{"inactive_days":%s}\n' "$(json_str "$days")"; exit 0 ;;
esac
printf '{"inactive_days":%s,"never_disabled":%s}\n' "$days" "$([ "$days" = -1 ] && echo true || echo false)"
