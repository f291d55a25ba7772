# Restores exactly the registry values WIN-EVT-001's remediation saved.
Restore-OsirisRegistry 'WIN-EVT-001'
