# Remediate: no routing, no ICMP redirects, SYN cookies on; now and after reboot.
cat > /etc/sysctl.d/99-osiris-network.conf <<CONF
# Written by osiris (LIN-KERN-001).
net.ipv4.ip_forward = 0
net.ipv4.conf.all.accept_redirects = 0
net.ipv4.conf.default.accept_redirects = 0
net.ipv4.conf.all.send_redirects = 0
net.ipv4.tcp_syncookies = 1
CONF
for setting in net.ipv4.ip_forward=0 net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.default.accept_redirects=0 net.ipv4.conf.all.send_redirects=0 net.ipv4.tcp_syncookies=1; do
  sysctl -q -w "$setting"
done
echo '{"written":"/etc/sysctl.d/99-osiris-network.conf"}'
