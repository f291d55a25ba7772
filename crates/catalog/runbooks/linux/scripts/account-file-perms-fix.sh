# Remediate: owner root and safe modes on the account databases.
group=root
getent group shadow >/dev/null 2>&1 && group=shadow
for file in /etc/shadow /etc/gshadow; do
  [ -e "$file" ] && chown "root:$group" "$file" && chmod 640 "$file"
done
for file in /etc/passwd /etc/group; do
  [ -e "$file" ] && chown root:root "$file" && chmod 644 "$file"
done
echo '{"changed":["/etc/shadow","/etc/gshadow","/etc/passwd","/etc/group"]}'
