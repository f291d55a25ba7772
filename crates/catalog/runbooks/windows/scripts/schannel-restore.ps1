# Restores exactly the registry values WIN-TLS-001's remediation saved.
Restore-OsirisRegistry 'WIN-TLS-001'
