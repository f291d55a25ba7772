# Restores exactly the registry values WIN-NET-001's remediation saved.
Restore-OsirisRegistry 'WIN-NET-001'
