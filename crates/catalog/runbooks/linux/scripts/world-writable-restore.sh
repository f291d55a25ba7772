# Rollback: put back the modes recorded before the last world-writable fix.
[ -r "$OSIRIS_BACKUP_DIR/world-writable.modes" ] || { echo "no recorded modes to restore" >&2; exit 4; }
while read -r mode path; do chmod "$mode" "$path"; done < "$OSIRIS_BACKUP_DIR/world-writable.modes"
echo '{"restored":"world-writable modes"}'
