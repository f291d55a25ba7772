# Remediate: PASS_MAX_DAYS in /etc/login.defs set to OSIRIS_PARAM_MAX_DAYS (new passwords; existing
# accounts keep their aging until changed with chage).
days=${OSIRIS_PARAM_MAX_DAYS:?}
backup_file /etc/login.defs login.defs
if grep -qE '^[[:space:]]*PASS_MAX_DAYS' /etc/login.defs; then
  sed -i -E "s/^[[:space:]]*PASS_MAX_DAYS.*/PASS_MAX_DAYS\t$days/" /etc/login.defs
else
  printf 'PASS_MAX_DAYS\t%s\n' "$days" >> /etc/login.defs
fi
printf '{"pass_max_days":%s}\n' "$days"
