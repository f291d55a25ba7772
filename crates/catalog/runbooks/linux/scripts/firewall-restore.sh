# Rollback: remove the osiris nftables table and its persistence.
nft delete table inet osiris_filter 2>/dev/null || true
rm -f /etc/nftables.d/osiris-filter.nft
if [ -f "$OSIRIS_BACKUP_DIR/nftables.conf" ]; then restore_file /etc/nftables.conf nftables.conf; fi
echo '{"removed":"inet osiris_filter"}'
