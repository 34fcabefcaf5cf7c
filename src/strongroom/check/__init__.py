"""Checking backups: verify every object and dump against the signed manifest, and repair what another copy can mend."""
