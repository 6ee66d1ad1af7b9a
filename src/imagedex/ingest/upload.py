"""Uploads through imagedex: files and folders into the store, one S3-shaped event each.

Keys: every file keeps its path below the common root of what was given (files and folders),
so `c1/pic.jpg c2/pic.jpg` become `c1/pic.jpg` and `c2/pic.jpg`, and a folder `holiday` given
alone becomes `holiday/...`. A key that already holds other bytes is never replaced silently:
the file goes to `<name>~<first 8 hex of its MD5><suffix>` beside it (derived from the content,
so ingesting the same file again finds it there) unless `overwrite` is asked for. The same bytes
under the same key are left alone.
"""

from __future__ import annotations

import dataclasses
import json
import mimetypes
import os
import posixpath
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from imagedex.documents import document_id
from imagedex.errors import ImagedexError, ObjectNotFoundError
from imagedex.ingest.events import make_notification, parse_notification
from imagedex.ingest.imaging import require_image
from imagedex.services import Services
from imagedex.storage.base import ObjectInfo, content_etag, validate_key

IMAGE_SUFFIXES = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".jpe",
        ".png",
        ".gif",
        ".webp",
        ".bmp",
        ".tif",
        ".tiff",
        ".mpo",
        ".heic",
        ".heif",
        ".hif",
        ".avif",
        ".ppm",
        ".pgm",
        ".pbm",
        ".pnm",
    }
)

SNIFF_BYTES = 4096  # enough for every magic number and for saying what a non-image looks like

#: What ingest did with a file's bytes (retitled: same bytes, stored again for a new --title).
UPLOADED, UNCHANGED, RENAMED, OVERWRITTEN = "uploaded", "unchanged", "renamed", "overwritten"
RETITLED = "retitled"


@dataclass(frozen=True)
class Upload:
    path: str
    key: str
    doc_id: str
    etag: str
    size: int
    action: str = UPLOADED  # uploaded | unchanged | renamed | overwritten | retitled
    wanted_key: str = ""  # the key the path maps to, when another one was chosen (renamed)


@dataclass(frozen=True)
class Refusal:
    """A file that was not stored, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class UploadOutcome:
    upload: Upload
    status: str  # indexed | failed | pending | replaced
    reason: str = ""


class KeyConflictError(ImagedexError):
    """Both the key and its content-derived alternative hold other bytes."""


def common_root(paths: Iterable[Path]) -> Path:
    """The deepest folder holding every given path (each path's parent for a single one)."""
    parents = [os.path.dirname(os.path.abspath(path)) for path in paths]
    return Path(os.path.commonpath(parents)) if parents else Path.cwd()


def iter_files(paths: Iterable[Path]) -> Iterator[tuple[Path, str]]:
    """(file, object key) for files given directly (any name) and images found in folders
    (by suffix; hidden files and folders skipped), each key the path below the common root."""
    given = list(paths)
    for path in given:
        if not path.exists():
            raise FileNotFoundError(f"no such file or folder: {path}")
    root = common_root(given)
    seen: set[str] = set()

    def key_of(file: Path) -> str:
        return Path(os.path.relpath(os.path.abspath(file), root)).as_posix()

    for path in given:
        if path.is_dir():
            for dirpath, dirnames, filenames in os.walk(os.path.abspath(path)):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_SUFFIXES:
                        continue
                    file = Path(dirpath) / name
                    key = key_of(file)
                    if key not in seen:
                        seen.add(key)
                        yield file, key
        else:
            key = key_of(path)
            if key not in seen:
                seen.add(key)
                yield path, key


def alternative_key(key: str, etag: str) -> str:
    """`dir/pic.jpg` -> `dir/pic~1a2b3c4d.jpg`: where other bytes wanting a taken key go."""
    folder, name = posixpath.split(key)
    stem, suffix = posixpath.splitext(name)
    return posixpath.join(folder, f"{stem}~{etag[:8]}{suffix}")


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


def _stored_etag(services: Services, key: str) -> str | None:
    try:
        return services.store.head(key).etag
    except ObjectNotFoundError:
        return None


def place(services: Services, key: str, etag: str, overwrite: bool) -> tuple[str, str]:
    """(key, action) for bytes with this ETag that want `key`: see the module docstring.

    Check-then-put: two processes storing different bytes under the same new key at the same
    moment can still race (the stores have no conditional put here); everything else is safe.
    """
    current = _stored_etag(services, key)
    if current is None:
        return key, UPLOADED
    if current == etag:
        return key, UNCHANGED
    if overwrite:
        return key, OVERWRITTEN
    other = alternative_key(key, etag)
    current = _stored_etag(services, other)
    if current is None:
        return other, RENAMED
    if current == etag:
        return other, UNCHANGED
    raise KeyConflictError(f"both {key!r} and {other!r} hold other images; use --overwrite")


def _requeue_if_unindexed(services: Services, upload: Upload, dead: DeadLetterReasons) -> None:
    """Unchanged bytes whose version is neither indexed nor dead-lettered get their event again
    (the index may have been rebuilt, or the event lost); a redelivered event is harmless."""
    doc = services.index.get(upload.doc_id)
    if doc is not None and doc.etag == upload.etag:
        return
    if (services.store.bucket, upload.key, upload.etag) in dead.get(services):
        return  # it failed before and would again: `imagedex dlq retry` is the way
    notify(services, services.store.head(upload.key))


def read_image_file(file: Path, max_bytes: int) -> bytes:
    """The file's bytes if they start like an accepted image and hold at most `max_bytes`, else
    ImagedexError saying why; only the first bytes are read from a file that is refused."""
    if not file.is_file():
        raise ImagedexError("not a regular file")
    try:
        with file.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > max_bytes:
                raise ImagedexError(
                    f"it is {size} bytes, more than the {max_bytes} accepted "
                    "(setting max_upload_bytes)"
                )
            head = handle.read(SNIFF_BYTES)
            require_image(head)
            data = head + handle.read(max_bytes + 1 - len(head))
            if len(data) > max_bytes:  # it grew while being read
                raise ImagedexError(f"it grew past {max_bytes} bytes while being read")
            return data
    except OSError as exc:
        raise ImagedexError(f"cannot read it: {exc.strerror or exc}") from exc


def upload_file(
    services: Services,
    file: Path,
    key: str,
    title: str | None = None,
    overwrite: bool = False,
    dead: DeadLetterReasons | None = None,
) -> Upload:
    """One file under `key` (or its alternative); raises ImagedexError when it is refused.
    `dead` is a dead-letter reading shared by the files of one ingest."""
    data = read_image_file(file, services.settings.max_upload_bytes)
    etag = content_etag(data)
    wanted = services.store.prefix + key
    final, action = place(services, wanted, etag, overwrite)
    if action == RENAMED and not title:
        title = posixpath.basename(wanted)  # still found by its file name
    if action == UNCHANGED and title and services.store.head(final).metadata.get("title") != title:
        action = RETITLED
    if action == UNCHANGED:
        upload = Upload(
            str(file), final, document_id(services.store.bucket, final), etag, len(data), action
        )
        _requeue_if_unindexed(services, upload, dead or DeadLetterReasons())
    else:
        stored = upload_bytes(services, final, data, title=title)
        upload = Upload(str(file), stored.key, stored.doc_id, stored.etag, stored.size, action)
    if final != wanted:
        upload = dataclasses.replace(upload, wanted_key=wanted)
    return upload


def upload_paths(
    services: Services,
    paths: Iterable[Path],
    title: str | None = None,
    on_upload: Callable[[Upload | Refusal], None] | None = None,
    overwrite: bool = False,
) -> tuple[list[Upload], list[Refusal]]:
    """Store every file (see the module docstring); files that are not images, cannot be read
    or find no free key are refused, each with its reason, and the others still go."""
    uploads: list[Upload] = []
    refused: list[Refusal] = []
    dead = DeadLetterReasons(max_age=60.0)
    for file, key in iter_files(paths):
        result: Upload | Refusal
        try:
            result = upload_file(services, file, key, title, overwrite, dead)
            uploads.append(result)
        except ImagedexError as exc:
            result = Refusal(str(file), str(exc))
            refused.append(result)
        if on_upload is not None:
            on_upload(result)
    return uploads, refused


# -- waiting for the worker ---------------------------------------------------------------------


def dead_letter_reasons(services: Services) -> dict[tuple[str, str, str], str]:
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


class DeadLetterReasons:
    """`dead_letter_reasons`, read again only when the dead-letter count changed or the last
    reading is `max_age` seconds old (reading them all is costly; on SQS it is a peek)."""

    def __init__(self, max_age: float = 5.0) -> None:
        self.max_age = max_age
        self._lock = threading.Lock()
        self._count = -1
        self._read_at = 0.0
        self._reasons: dict[tuple[str, str, str], str] = {}

    def get(self, services: Services) -> dict[tuple[str, str, str], str]:
        count = services.queue.stats().dead
        with self._lock:
            now = time.monotonic()
            if count != self._count or now - self._read_at >= self.max_age:
                self._reasons = dead_letter_reasons(services) if count else {}
                self._count, self._read_at = count, now
            return self._reasons


def check_uploads(
    services: Services,
    uploads: Iterable[Upload],
    dead: dict[tuple[str, str, str], str] | None = None,
    final: bool = False,
) -> list[UploadOutcome]:
    """Indexed (this version), failed (dead-lettered, with the reason), replaced (the key holds
    other bytes now, so this version will never be indexed) or still pending.

    `dead` is a reading of the dead-letter reasons to reuse; without it the queue is read once.
    The store is asked whether a pending upload was replaced only when its document shows
    another version, or when `final` (the last look before giving up).
    """
    outcomes = []
    for upload in uploads:
        doc = services.index.get(upload.doc_id)
        if doc is not None and doc.etag == upload.etag:
            outcomes.append(UploadOutcome(upload, "indexed"))
            continue
        if dead is None:
            dead = dead_letter_reasons(services)
        reason = dead.get((services.store.bucket, upload.key, upload.etag))
        if reason is not None:
            outcomes.append(UploadOutcome(upload, "failed", reason))
        elif (doc is not None or final) and _stored_etag(services, upload.key) != upload.etag:
            outcomes.append(
                UploadOutcome(
                    upload, "replaced", "another upload replaced it before it was indexed"
                )
            )
        else:
            outcomes.append(UploadOutcome(upload, "pending"))
    return outcomes


def wait_for(
    services: Services,
    uploads: list[Upload],
    timeout: float,
    poll: float = 0.25,
    on_progress: Callable[[int, int], None] | None = None,
    worker_alive: Callable[[], bool] | None = None,
) -> list[UploadOutcome]:
    """Poll until every upload is indexed, dead-lettered or replaced; or until none has finished
    for `timeout` seconds; or until the worker `worker_alive` watches has stopped. Pending
    uploads then say why they are."""
    reasons = DeadLetterReasons()
    finished: dict[int, UploadOutcome] = {}
    idle_since = time.monotonic()
    while True:
        open_ones = [i for i in range(len(uploads)) if i not in finished]
        last_look = time.monotonic() - idle_since >= timeout or (
            worker_alive is not None and not worker_alive()
        )
        checked = check_uploads(
            services, [uploads[i] for i in open_ones], reasons.get(services), final=last_look
        )
        for i, outcome in zip(open_ones, checked, strict=True):
            if outcome.status != "pending":
                finished[i] = outcome
                idle_since = time.monotonic()
        if on_progress is not None:
            on_progress(len(finished), len(uploads))
        if len(finished) == len(uploads):
            return [finished[i] for i in range(len(uploads))]
        if last_look:
            why = (
                "the worker in this process stopped before indexing it"
                if worker_alive is not None and not worker_alive()
                else f"nothing finished for {timeout:g} s (is a worker running? see "
                "`imagedex status`)"
            )
            return [
                finished.get(i) or UploadOutcome(uploads[i], "pending", why)
                for i in range(len(uploads))
            ]
        time.sleep(poll)
