"""Restoring: a whole scope, one project of a site backup, or parts; the room it needs, the tree built beside the live one and swapped in, rollback and crash recovery."""
