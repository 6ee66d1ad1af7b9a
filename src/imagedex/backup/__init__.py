"""Backups of a running system and restores into an empty data dir.

A backup is a folder:

    manifest.json    format, imagedex version, times, what was and was not covered, counts,
                     and the SHA-256 of every store, file and the object list
    stores/          one consistent copy of each SQLite store (SQLite's online backup API)
    files/           the data dir's other small files (the secret that signs links and sessions)
    objects.jsonl    one line per object of the local bucket: key, size, ETag, SHA-256,
                     content type, user metadata
    objects/<key>    the objects themselves

`snapshot.py` makes one, `restore.py` checks one and fills an empty data dir from it,
`layout.py` decides what a data dir holds and where each piece goes back.
"""

from __future__ import annotations

from imagedex.backup.manifest import BackupError, BadBackupError
from imagedex.backup.restore import restore_backup, verify_backup
from imagedex.backup.snapshot import create_backup

__all__ = ["BackupError", "BadBackupError", "create_backup", "restore_backup", "verify_backup"]
