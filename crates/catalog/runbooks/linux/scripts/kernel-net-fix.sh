# Remediate: no routing, no ICMP redirects, SYN cookies on; now and after reboot.
cat > /etc/sysctl.d/99-osiris-network.conf <<CONF
# Written by osiris (LIN-KERN-001).
net.ipv4.ip_forward = 0
net.ipv4.conf.all.accept_redirects = 0
net.ipv4.conf.default.accept_redirects = 0
net.ipv4.conf.all.send_redirects = 0
net.ipv4.tcp_syncookies = 1
CONF
refused=""
for setting in net.ipv4.ip_forward=0 net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.default.accept_redirects=0 net.ipv4.conf.all.send_redirects=0 net.ipv4.tcp_syncookies=1; do
  sysctl -q -w "$setting" 2>/dev/null || refused="$refused ${setting%%=*}"
done
if [ -n "$refused" ]; then
  # /proc/sys is read-only in containers: the host (or the container manager) owns these settings.
  echo "the kernel refused to change:$refused (is this a container? set them on its host)" >&2
  exit 5
fi
echo '{"written":"/etc/sysctl.d/99-osiris-network.conf"}'
