# Rollback: drop the osiris sysctl file (runtime values return to the distribution's at next boot).
rm -f /etc/sysctl.d/99-osiris-network.conf
echo '{"removed":"/etc/sysctl.d/99-osiris-network.conf"}'
