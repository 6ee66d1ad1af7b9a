"""What a backup covers: the data dir's SQLite stores and small files, the index and queue files
wherever the settings put them, and a local bucket; and what it cannot cover (S3, SQS,
OpenSearch/Elasticsearch), named so that nobody believes a partial backup is a whole one."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse, urlsplit, urlunsplit

from imagedex.backup.manifest import BackupError
from imagedex.config import Settings

SQLITE_SUFFIX = ".sqlite3"
#: Files SQLite keeps beside a database while it is open: part of that database, never copied
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
#: Data dir folders left out on purpose, with the reason the manifest gives
_CACHES = {"thumbnails": "a cache: thumbnails are made again when first shown"}
#: The stores the settings can move out of the data dir: role -> (setting, default file name)
ROLES = {"queue": ("queue", "queue.sqlite3"), "index": ("index", "index.sqlite3")}


@dataclass(frozen=True)
class StoreFile:
    """One SQLite store: `name` in the backup's stores/ folder, `path` of the live file, and
    its role ("index", "queue": restored where the settings name them; "": the data dir)."""

    name: str
    path: Path
    role: str = ""


@dataclass
class Coverage:
    data_dir: Path
    stores: list[StoreFile] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    bucket: Path | None = None  # the local bucket's folder
    not_covered: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


def role_path(settings: Settings, role: str) -> Path | None:
    """Where the SQLite file of the index or queue is, or None when it is not SQLite."""
    setting, default_name = ROLES[role]
    url = str(getattr(settings, setting))
    if url in ("", "sqlite"):
        return settings.data_dir / default_name
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite://"))
    return None


def bucket_folder(settings: Settings) -> Path | None:
    """The folder of a local (`file://`) bucket, or None for S3 and other remote stores."""
    parsed = urlparse(settings.store_url)
    return Path(unquote(parsed.path)).resolve() if parsed.scheme == "file" else None


def without_credentials(url: str) -> str:
    """A URL as the manifest may show it: no user name or password."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _remote_notes(settings: Settings) -> list[str]:
    store, queue, index = (
        without_credentials(url) for url in (settings.store_url, settings.queue, settings.index)
    )
    notes = []
    if bucket_folder(settings) is None:
        notes.append(
            f"objects in {store}: back the bucket up with S3 versioning or replication "
            "(or `aws s3 sync`)"
        )
    if role_path(settings, "queue") is None:
        notes.append(f"the queue {queue}: its messages and dead letters stay in SQS, not copied")
    if role_path(settings, "index") is None:
        notes.append(
            f"the search index {index}: take a snapshot with the engine's _snapshot API after "
            "this backup (README: Backup and restore)"
        )
    return notes


def plan(settings: Settings) -> Coverage:
    """What a backup of these settings copies, in the order it must copy it: the queue before
    the index (see snapshot.py), then the other stores, the files and the bucket."""
    data_dir = settings.data_dir.resolve()
    if not data_dir.is_dir():
        raise BackupError(f"nothing to back up: the data dir {data_dir} does not exist")
    coverage = Coverage(data_dir, bucket=bucket_folder(settings))
    coverage.not_covered = _remote_notes(settings)
    claimed: set[Path] = set()
    for role, (_setting, name) in ROLES.items():
        path = role_path(settings, role)
        if path is not None and path.is_file():
            coverage.stores.append(StoreFile(name, path.resolve(), role))
            claimed.add(path.resolve())
    role_names = {name for _setting, name in ROLES.values()}
    for entry in sorted(data_dir.iterdir()):
        name = entry.name
        if name.startswith(".") or name.endswith(_SQLITE_SIDE_FILES):
            continue  # temporary files of a writer, SQLite's own companions
        if entry.is_symlink():
            coverage.skipped.append({"path": name, "why": "a symbolic link"})
        elif entry.is_dir():
            if coverage.bucket is not None and entry.resolve() == coverage.bucket:
                continue
            why = _CACHES.get(name, "a folder imagedex does not keep state in")
            coverage.skipped.append({"path": name + "/", "why": why})
        elif name.endswith(SQLITE_SUFFIX):
            if entry.resolve() in claimed:
                continue
            if name in role_names:
                coverage.skipped.append(
                    {"path": name, "why": "not the store the settings use (a leftover)"}
                )
                continue
            coverage.stores.append(StoreFile(name, entry.resolve()))
        elif entry.is_file():
            coverage.files.append(entry)
    return coverage
