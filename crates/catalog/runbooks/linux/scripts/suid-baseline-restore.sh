# Rollback: put back the modes (with their SUID/SGID bits) recorded before the last baseline fix.
[ -r "$OSIRIS_BACKUP_DIR/suid-baseline.modes" ] || { echo "no recorded modes to restore" >&2; exit 4; }
while read -r mode path; do chmod "$mode" "$path"; done < "$OSIRIS_BACKUP_DIR/suid-baseline.modes"
echo '{"restored":"SUID/SGID modes"}'
