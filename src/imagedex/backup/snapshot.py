"""`imagedex backup`: one consistent copy of a system that keeps running.

The order of the copies is what makes them consistent. An upload writes the object, then queues
its event; the worker writes the document, then deletes the message. So the queue is copied
first (T0), the index next (T1), the bucket last (T2):

- a message missing from the copied queue was deleted before T0, so its document was written
  before T1 and is in the copied index (or it was sent after T0: an upload after the snapshot);
- a document in the copied index was written before T1, after its object was: the object is
  still there at T2 unless it was deleted in between.

Work done between T0 and T2 is made whole in the copy: an object copied without a document of
the same version (and no dead letter) gets a fresh "created" event in the copied queue (the
worker skips one it has already indexed), and a document whose object was deleted before T2
gets a "removed" event, so the restored worker finishes both. Each SQLite store is copied with
SQLite's online backup API in one step: one read snapshot, while writers carry on (WAL).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from imagedex import __version__
from imagedex.backup.layout import Coverage, StoreFile, plan, role_path, without_credentials
from imagedex.backup.manifest import (
    FILES,
    FORMAT,
    FORMAT_VERSION,
    OBJECT_LIST,
    OBJECTS,
    STORES,
    BackupError,
    Progress,
    copy_hashing,
    file_sha256,
    member,
    no_progress,
    write_manifest,
)
from imagedex.config import Settings
from imagedex.db import Database
from imagedex.documents import document_id
from imagedex.errors import EventParseError, ObjectNotFoundError
from imagedex.index.sqlite import SqliteIndex
from imagedex.ingest.events import make_notification, parse_notification
from imagedex.queue.sqlite import SqliteQueue
from imagedex.storage import LocalPaths, open_store


def create_backup(
    settings: Settings,
    dest: Path,
    *,
    local_only: bool = False,
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """Back up the system the settings describe into the new or empty folder `dest`; the
    manifest. Parts that live in remote services (S3, SQS, a search engine) are refused unless
    `local_only`, and then named in the manifest's `not_covered`."""
    coverage = plan(settings)
    if coverage.not_covered and not local_only:
        raise BackupError(
            "a backup here cannot cover " + "; ".join(coverage.not_covered) + ". Back those up "
            "with the tools named, and run `imagedex backup --local-only` for the rest"
        )
    dest = _destination(dest, coverage)
    # written under a hidden name and renamed when complete: an interrupted backup never looks
    # like one (and leaves no manifest even if its folder is copied)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    try:
        manifest = _write(settings, coverage, staging, progress)
        try:
            os.replace(staging, dest)
        except OSError as exc:
            raise BackupError(f"cannot move the finished backup to {dest}: {exc}") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _destination(dest: Path, coverage: Coverage) -> Path:
    dest = dest.expanduser().resolve()
    for inside, what in ((coverage.data_dir, "the data dir"), (coverage.bucket, "the bucket")):
        if inside is not None and dest.is_relative_to(inside):
            raise BackupError(
                f"{dest} is inside {what} {inside}: back up to a folder outside it "
                "(best on another disk)"
            )
    if dest.exists() and not dest.is_dir():
        raise BackupError(f"{dest} is a file: give a new or empty folder for the backup")
    if dest.is_dir() and any(dest.iterdir()):
        raise BackupError(
            f"{dest} is not empty: a backup goes into a new or empty folder, so that it never "
            "mixes with or overwrites another one"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    return dest


def _write(
    settings: Settings, coverage: Coverage, staging: Path, progress: Progress
) -> dict[str, Any]:
    started = _now()
    for done, store in enumerate(coverage.stores):
        progress("stores", done, len(coverage.stores))
        _snapshot_store(store.path, staging / STORES / store.name)
    progress("stores", len(coverage.stores), len(coverage.stores))
    files = []
    for path in coverage.files:
        copied = copy_hashing(path, staging / FILES / path.name)
        entry = _entry(copied.sha256, copied.size)
        files.append({"file": f"{FILES}/{path.name}", "name": path.name, **entry})
    objects = None
    if coverage.bucket is not None:
        objects = _copy_bucket(settings, staging, progress)
    counts = _finish_queue(settings, coverage, staging, objects, progress)
    stores = [_describe(store, staging / STORES / store.name) for store in coverage.stores]
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "imagedex_version": __version__,
        "started_at": started,
        "finished_at": _now(),
        "source": {
            "data_dir": str(coverage.data_dir),
            "store": without_credentials(settings.store_url),
            "index": without_credentials(settings.index),
            "queue": without_credentials(settings.queue),
        },
        "stores": stores,
        "files": files,
        "objects": objects,
        "counts": counts,
        "not_covered": coverage.not_covered,
        "skipped": coverage.skipped,
    }
    write_manifest(staging, manifest)
    return manifest


def _snapshot_store(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite file, checked before it counts as backed up."""
    source_db = Database(source)
    target_db = Database(target)
    try:
        source_db.connection().backup(target_db.connection())
        problems = target_db.connection().execute("PRAGMA quick_check").fetchall()
    except sqlite3.Error as exc:
        raise BackupError(f"cannot back up {source}: {exc}") from exc
    finally:
        target_db.close()
        source_db.close()
    if problems != [("ok",)]:
        raise BackupError(
            f"{source} fails SQLite's integrity check ({problems[0][0]}); it was not backed up"
        )


def _describe(store: StoreFile, path: Path) -> dict[str, Any]:
    """A store's manifest entry: its checksum, schema version and rows per table."""
    database = Database(path)
    try:
        db = database.connection()
        user_version = int(db.execute("PRAGMA user_version").fetchone()[0])
        rows = _row_counts(db)
    finally:
        database.close()
    sha256, size = file_sha256(path)
    return {
        "file": f"{STORES}/{store.name}",
        "name": store.name,
        "role": store.role,
        **_entry(sha256, size),
        "user_version": user_version,
        "rows": rows,
    }


def _row_counts(db: sqlite3.Connection) -> dict[str, int]:
    """Rows in each table, leaving out full-text tables and their internal tables."""
    tables = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        " ORDER BY name"
    ).fetchall()
    virtual = [name for name, sql in tables if str(sql).upper().startswith("CREATE VIRTUAL")]
    counts = {}
    for name, _sql in tables:
        if any(name == v or name.startswith(v + "_") for v in virtual):
            continue
        quoted = '"' + name.replace('"', '""') + '"'
        counts[name] = int(db.execute(f"SELECT COUNT(*) FROM {quoted}").fetchone()[0])
    return counts


def _copy_bucket(settings: Settings, staging: Path, progress: Progress) -> dict[str, Any]:
    """Every object of the local bucket, and the list of them with their checksums."""
    store = open_store(settings.store_url)
    if not isinstance(store, LocalPaths):
        raise BackupError(f"the object store {settings.store_url} is not a local folder")
    count = total = 0
    listing_path = staging / OBJECT_LIST
    with listing_path.open("x", encoding="utf-8") as listing:
        for info in store.list():
            try:
                source = store.open_path(info.key)
                copied = copy_hashing(source, member(staging / OBJECTS, info.key))
            except (ObjectNotFoundError, FileNotFoundError):
                continue  # deleted since it was listed
            line = {
                "key": info.key,
                "size": copied.size,
                "etag": copied.md5,
                "sha256": copied.sha256,
                "content_type": info.content_type,
                "metadata": info.metadata,
            }
            listing.write(json.dumps(line, ensure_ascii=False) + "\n")
            count += 1
            total += copied.size
            progress("objects", count, None)
    sha256, size = file_sha256(listing_path)
    return {
        "bucket": store.bucket,
        "count": count,
        "bytes": total,
        "list": {"file": OBJECT_LIST, **_entry(sha256, size)},
    }


def _finish_queue(
    settings: Settings,
    coverage: Coverage,
    staging: Path,
    objects: dict[str, Any] | None,
    progress: Progress,
) -> dict[str, Any]:
    """Events in the copied queue for work done while the bucket was copied (see the module
    docstring), then the counts the manifest shows."""
    roles = {store.role: staging / STORES / store.name for store in coverage.stores if store.role}
    index = SqliteIndex(roles["index"]) if "index" in roles else None
    queue = SqliteQueue(roles["queue"], settings.max_receive_count) if "queue" in roles else None
    # a SQLite index that has no file yet has no documents; an engine's cannot be checked here
    index_known = index is not None or role_path(settings, "index") is not None
    counts: dict[str, Any] = {"images": None, "objects": None, "queue": None}
    try:
        if queue is not None and objects is not None and index_known:
            pending = _pending_keys(roles["queue"], staging)
            counts.update(_requeue(index, queue, pending, staging, objects["bucket"], progress))
        if objects is not None:
            counts["objects"] = objects["count"]
        if index is not None:
            counts["images"] = index.count()
        elif index_known:
            counts["images"] = 0
        if queue is not None:
            counts["queue"] = asdict(queue.stats())
    finally:
        if index is not None:
            index.close()
        if queue is not None:
            queue.close()
    return counts


def _requeue(
    index: SqliteIndex | None,
    queue: SqliteQueue,
    pending: set[str],
    staging: Path,
    bucket: str,
    progress: Progress,
) -> dict[str, int]:
    """A "created" event for each copied object that is neither indexed (in this version), nor
    waiting in the queue, nor a dead letter; a "removed" event for each document whose object
    was deleted before it could be copied."""
    known = pending | _dead_letter_keys(queue)
    created = removed = checked = 0
    with (staging / OBJECT_LIST).open(encoding="utf-8") as listing:
        for line in listing:
            obj = json.loads(line)
            doc = index.get(document_id(bucket, obj["key"])) if index is not None else None
            if (doc is None or doc.etag != obj["etag"]) and obj["key"] not in known:
                body = make_notification("created", bucket, obj["key"], obj["size"], obj["etag"])
                queue.send(json.dumps(body))
                created += 1
            checked += 1
            progress("work under way", checked, None)
    for doc in index.iter_documents() if index is not None else ():
        if doc.bucket == bucket and not member(staging / OBJECTS, doc.key).is_file():
            queue.send(json.dumps(make_notification("removed", bucket, doc.key)))
            removed += 1
        checked += 1
        progress("work under way", checked, None)
    return {"requeued": created, "removals_queued": removed}


_FAR_FUTURE = 1e12  # seconds: year 33658; a received message stays hidden as long again


def _pending_keys(queue_copy: Path, staging: Path) -> set[str]:
    """Keys of the objects whose events wait in the copied queue.

    The queue's protocol reads messages by receiving them, which changes them; so they are
    received from a scratch copy of the copy, with a clock far in the future (every message is
    visible, none is dead-lettered), and the scratch copy is thrown away."""
    scratch = staging / ".pending-scan.sqlite3"
    _snapshot_store(queue_copy, scratch)
    queue = SqliteQueue(scratch, max_receive_count=2**62, clock=lambda: _FAR_FUTURE)
    keys: set[str] = set()
    try:
        while batch := queue.receive(max_messages=500, visibility_timeout=_FAR_FUTURE):
            for message in batch:
                keys.update(_keys(message.body))
    finally:
        queue.close()
        for leftover in staging.glob(scratch.name + "*"):
            leftover.unlink()
    return keys


def _dead_letter_keys(queue: SqliteQueue) -> set[str]:
    """Keys of the objects whose events are dead letters: known bad, not to be tried again."""
    keys: set[str] = set()
    for letter in queue.dead_letters(max(1, queue.stats().dead)):
        keys.update(_keys(letter.body))
    return keys


def _keys(body: str) -> list[str]:
    try:
        return [event.key for event in parse_notification(body)]
    except EventParseError:
        return []


def _entry(sha256: str, size: int) -> dict[str, Any]:
    return {"sha256": sha256, "bytes": size}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
