# Restores exactly the registry values WIN-UAC-001's remediation saved.
Restore-OsirisRegistry 'WIN-UAC-001'
