# Remediate: load a default-deny inbound nftables table that keeps loopback, replies, ICMP and
# the allowed TCP ports (OSIRIS_PARAM_ALLOW_TCP_PORTS, comma-separated) open; persist it.
command -v nft >/dev/null 2>&1 || { echo "nftables is not installed: install the nftables package" >&2; exit 4; }
ports=${OSIRIS_PARAM_ALLOW_TCP_PORTS:-22}
case "$ports" in *[!0-9,]* | '' | ,* | *, | *,,*) echo "allow_tcp_ports must be port numbers separated by commas" >&2; exit 4 ;; esac
mkdir -p /etc/nftables.d
cat > /etc/nftables.d/osiris-filter.nft <<NFT
table inet osiris_filter
delete table inet osiris_filter
table inet osiris_filter {
  chain input {
    type filter hook input priority filter; policy drop;
    iif lo accept
    ct state established,related accept
    ct state invalid drop
    # ICMP (1) and ICMPv6 (58) by number: minimal systems may lack /etc/protocols.
    meta l4proto { 1, 58 } accept
    tcp dport { $ports } accept
  }
}
NFT
if ! errors=$(nft -f /etc/nftables.d/osiris-filter.nft 2>&1); then
  rm -f /etc/nftables.d/osiris-filter.nft
  printf 'nft refused the rules, nothing was loaded: %s\n' "$errors" >&2
  exit 5
fi
if [ -f /etc/nftables.conf ] && ! grep -q 'osiris-filter.nft' /etc/nftables.conf; then
  backup_file /etc/nftables.conf nftables.conf
  echo 'include "/etc/nftables.d/osiris-filter.nft"' >> /etc/nftables.conf
fi
printf '{"loaded":"inet osiris_filter","allowed_tcp_ports":"%s"}\n' "$ports"
