"""Uploads through imagedex: files and folders into the store, one S3-shaped event each."""

from __future__ import annotations

import json
import mimetypes
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from imagedex.documents import document_id
from imagedex.ingest.events import make_notification, parse_notification
from imagedex.services import Services
from imagedex.storage.base import ObjectInfo, validate_key

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".mpo"}
)


@dataclass(frozen=True)
class Upload:
    path: str
    key: str
    doc_id: str
    etag: str
    size: int


@dataclass(frozen=True)
class UploadOutcome:
    upload: Upload
    status: str  # indexed | failed | pending
    reason: str = ""


def iter_files(paths: Iterable[Path]) -> Iterator[tuple[Path, str]]:
    """(file, object key) for files given directly (any name) and images found in folders.

    A folder's files keep their path below the folder, prefixed by the folder's own name.
    """
    for path in paths:
        if path.is_dir():
            base = path.resolve()
            for dirpath, dirnames, filenames in os.walk(base):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_SUFFIXES:
                        continue
                    file = Path(dirpath) / name
                    yield file, f"{base.name}/{file.relative_to(base).as_posix()}"
        elif path.is_file():
            yield path, path.name
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")


def notify(services: Services, info: ObjectInfo, kind: str = "created") -> None:
    """Emit the S3 event for an object, unless the store (S3) emits its own."""
    if services.store.emits_events():
        return
    body = make_notification(
        "created" if kind == "created" else "removed", info.bucket, info.key, info.size, info.etag
    )
    services.queue.send(json.dumps(body))


def upload_bytes(
    services: Services, key: str, data: bytes, title: str | None = None, content_type: str = ""
) -> Upload:
    validate_key(key)
    metadata = {"title": title} if title else {}
    ctype = content_type or mimetypes.guess_type(key)[0] or "application/octet-stream"
    info = services.store.put(key, data, ctype, metadata)
    notify(services, info)
    return Upload(
        path=key,
        key=info.key,
        doc_id=document_id(info.bucket, info.key),
        etag=info.etag,
        size=info.size,
    )


def upload_paths(
    services: Services,
    paths: Iterable[Path],
    title: str | None = None,
    on_upload: Callable[[Upload], None] | None = None,
) -> list[Upload]:
    uploads = []
    for file, key in iter_files(paths):
        upload = upload_bytes(services, services.store.prefix + key, file.read_bytes(), title=title)
        upload = Upload(str(file), upload.key, upload.doc_id, upload.etag, upload.size)
        uploads.append(upload)
        if on_upload is not None:
            on_upload(upload)
    return uploads


def _dead_letter_reasons(services: Services) -> dict[tuple[str, str, str], str]:
    """Reasons by (bucket, key, etag), so an older failed version does not mask a new upload."""
    reasons: dict[tuple[str, str, str], str] = {}
    for letter in services.queue.dead_letters(limit=10_000):
        try:
            events = parse_notification(letter.body)
        except Exception:
            continue
        for event in events:
            reasons.setdefault((event.bucket, event.key, event.etag), letter.error)
    return reasons


def check_uploads(
    services: Services,
    uploads: Iterable[Upload],
    dead: dict[tuple[str, str, str], str] | None = None,
) -> list[UploadOutcome]:
    """Indexed (this version), failed (dead-lettered, with the reason) or still pending.

    `dead` is a reading of the dead-letter reasons to reuse; without it the queue is read once.
    """
    outcomes = []
    for upload in uploads:
        doc = services.index.get(upload.doc_id)
        if doc is not None and doc.etag == upload.etag:
            outcomes.append(UploadOutcome(upload, "indexed"))
            continue
        if dead is None:
            dead = _dead_letter_reasons(services)
        reason = dead.get((services.store.bucket, upload.key, upload.etag))
        if reason is not None:
            outcomes.append(UploadOutcome(upload, "failed", reason))
        else:
            outcomes.append(UploadOutcome(upload, "pending"))
    return outcomes


def wait_for(
    services: Services,
    uploads: list[Upload],
    timeout: float,
    poll: float = 0.25,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[UploadOutcome]:
    """Poll until every upload is indexed or dead-lettered, or the timeout passes."""
    deadline = time.monotonic() + timeout
    dead_count, dead = -1, None
    while True:
        count = services.queue.stats().dead
        if count != dead_count:  # reading the DLQ is costly (on SQS a peek): only when it grew
            dead_count, dead = count, _dead_letter_reasons(services)
        outcomes = check_uploads(services, uploads, dead)
        done = sum(1 for o in outcomes if o.status != "pending")
        if on_progress is not None:
            on_progress(done, len(outcomes))
        if done == len(outcomes) or time.monotonic() >= deadline:
            return outcomes
        time.sleep(poll)
