"""Offsite copies: push backups to object storage, list, prune and pull them back, sealed so the provider reads nothing."""
