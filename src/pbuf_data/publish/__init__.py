"""Validation, publication, integrity and backups: the checks a dataset must pass (validation), the project's
writer lock, the checksum sidecars, backup snapshots and their store, restore, and verify. Imports the stages
below (read, model, base)."""
