# Restores exactly the registry values WIN-LOCK-002's remediation saved.
Restore-OsirisRegistry 'WIN-LOCK-002'
