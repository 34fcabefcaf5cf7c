"""Reading without changing: list backups, look inside one, preview a restore, diff two states, the operator's status."""
