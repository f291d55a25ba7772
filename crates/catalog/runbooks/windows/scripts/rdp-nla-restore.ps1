# Restores exactly the registry values WIN-RDP-001's remediation saved.
Restore-OsirisRegistry 'WIN-RDP-001'
