# Restores exactly the registry values WIN-WSLOCK-001's remediation saved.
Restore-OsirisRegistry 'WIN-WSLOCK-001'
