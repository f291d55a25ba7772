# Remediate: faillock.conf `deny = N`, `unlock_time = 900`, and pam_faillock in common-auth (Debian layout only).
deny=${OSIRIS_PARAM_MAX_FAILURES:?}
case "$deny" in '' | *[!0-9]* ) echo "max_failures must be a number" >&2; exit 2 ;; esac
file=/etc/pam.d/common-auth
[ -f "$file" ] || { echo "$file does not exist: only the Debian PAM layout is remediated; on system-auth systems use authselect enable-feature with-faillock" >&2; exit 4; }
found=""
for dir in /lib/*/security /usr/lib/*/security /lib/security /usr/lib/security; do
  [ -e "$dir/pam_faillock.so" ] && found=yes
done
[ -n "$found" ] || { echo "pam_faillock.so is not installed: install libpam-modules first" >&2; exit 4; }
if ! grep -q '^[^#]*pam_faillock\.so' "$file"; then
  # Only the stock pam-auth-update layout is edited: pam_unix with success=1 jumping over pam_deny.
  if ! awk '/^[[:space:]]*#/ || !NF { next } $1 == "auth" { print }' "$file" |
    awk 'u && $3 ~ /pam_deny\.so/ && $2 == "requisite" { ok = 1 } { u = ($2 == "[success=1" && $4 ~ /pam_unix\.so/) } END { exit !ok }'; then
    echo "$file is not the stock layout (pam_unix.so with success=1 followed by pam_deny.so): add pam_faillock by hand" >&2
    exit 4
  fi
fi
mkdir -p "$OSIRIS_BACKUP_DIR" && chmod 700 "$OSIRIS_BACKUP_DIR"
backup_file "$file" common-auth
if [ -f /etc/security/faillock.conf ]; then
  backup_file /etc/security/faillock.conf faillock.conf
else
  rm -f "$OSIRIS_BACKUP_DIR/faillock.conf"
fi
conf=/etc/security/faillock.conf
touch "$conf"
sed -i -E -e '/^[[:space:]]*deny[[:space:]]*=/d' -e '/^[[:space:]]*unlock_time[[:space:]]*=/d' "$conf"
printf 'deny = %s\nunlock_time = 900\n' "$deny" >> "$conf"
if ! grep -q '^[^#]*pam_faillock\.so' "$file"; then
  # preauth before pam_unix; authfail where pam_unix falls through on failure; authsucc is the
  # success=1 jump target, so the existing jump count stays right.
  awk '
    !done && $1 == "auth" && $2 == "[success=1" && $4 ~ /pam_unix\.so/ {
      print "auth\trequisite\t\t\tpam_faillock.so preauth"
      print
      print "auth\t[default=die]\t\t\tpam_faillock.so authfail"
      print "auth\tsufficient\t\t\tpam_faillock.so authsucc"
      done = 1
      next
    }
    { print }
  ' "$file" > "$file.osiris-new"
  chmod --reference="$file" "$file.osiris-new"
  mv "$file.osiris-new" "$file"
fi
printf '{"deny":%s,"unlock_time":900,"pam_file":%s}\n' "$deny" "$(json_str "$file")"
