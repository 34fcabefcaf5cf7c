"""Backups in and out: the portable archive (export and import), and the dumps others made (the original module's backups, mongodump folders)."""
