"""Backups of the app's data, and restoring them (`flask backup`, app/cli/backup.py; README "Backups and restore").

One backup is one directory (folder.py): manifest.json (when, the database's kind and alembic revision, the
evidence it holds, the SHA-256 and size of every part), SHA256SUMS (every file, the manifest too, in `sha256sum
-c` form), the database (sqlite.py: SQLite's online backup API; postgres.py: `pg_dump -Fc` in one snapshot) and the
evidence files of a directory store (evidence.py). Restoring checks every hash and the schema revision
(schema.py) before it changes anything; procedure.py holds the steps in their order."""


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why and what to do."""
