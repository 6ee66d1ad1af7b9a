"""Thumbnails: generated once per (image, size, object version), cached in the data dir.

A thumbnail lives at `data_dir/thumbnails/<id[:2]>/<id>-<size>-<version>.jpg`, where `version` is
eight characters derived from the object's ETag: a changed object gets a new file (and a new
cacheable URL), an unchanged one is never decoded twice. Files are written to a temporary name and
renamed into place, so a reader (or a second request generating the same file) never sees half a
JPEG. Generating one decodes within the process-wide pixel budget (`ingest/pixel_budget.py`, the
`decode_memory_mb` setting) that the worker shares: a request that finds no room within
`BUDGET_WAIT` seconds gets DecodeBusyError (the route answers 503 with Retry-After).
"""

from __future__ import annotations

import glob
import hashlib
import io
import re
import threading
from pathlib import Path

from PIL import Image

from imagedex.errors import ImageDecodeError, ObjectNotFoundError
from imagedex.ingest import pixel_budget
from imagedex.ingest.imaging import decode_image
from imagedex.services import Services
from imagedex.storage.local import write_atomically

STANDARD_SIZES = (160, 320, 640, 1280)
JPEG_QUALITY = 80
_VERSION = re.compile(r"[0-9a-f]{8}")
BUDGET_WAIT = 10.0  # seconds a request waits for decode memory before a 503 (a browser waits)

_locks_guard = threading.Lock()
_locks: dict[str, threading.Lock] = {}


class ThumbnailSizeError(ValueError):
    """A size outside the sizes the app serves (each one is a file on disk per image)."""


def allowed_sizes(services: Services) -> tuple[int, ...]:
    return tuple(sorted({*STANDARD_SIZES, services.settings.thumbnail_size}))


def version_tag(etag: str) -> str:
    """Eight hex characters naming one version of an object (its ETag's head when it is hex, as
    S3 and the local store give it; a digest of it otherwise)."""
    cleaned = etag.strip().strip('"').lower()
    if _VERSION.match(cleaned):
        return cleaned[:8]
    return hashlib.sha256(cleaned.encode()).hexdigest()[:8]


def is_version(text: str) -> bool:
    return bool(_VERSION.fullmatch(text))


def thumbnail_url(doc_id: str, etag: str, size: int) -> str:
    """The immutable URL of one thumbnail version (what the web app puts in <img src>)."""
    return f"/api/images/{doc_id}/thumbnail?size={size}&v={version_tag(etag)}"


def thumbnail_path(services: Services, doc_id: str, size: int, version: str) -> Path:
    return services.settings.data_dir / "thumbnails" / doc_id[:2] / f"{doc_id}-{size}-{version}.jpg"


def remove_thumbnails(services: Services, doc_id: str) -> int:
    """Delete every cached thumbnail of a document (all sizes and versions); how many."""
    if not doc_id.isalnum():  # ids are hex digests; anything else names no thumbnail folder
        return 0
    folder = services.settings.data_dir / "thumbnails" / doc_id[:2]
    removed = 0
    for path in folder.glob(f"{glob.escape(doc_id)}-*.jpg"):
        path.unlink(missing_ok=True)
        removed += 1
    return removed


def thumbnail(services: Services, doc_id: str, size: int, version: str | None = None) -> Path:
    """The thumbnail file (JPEG, longest side at most `size`) of the object's current version.

    `version` (from a URL made by `thumbnail_url`) names a version the caller already knows: when
    its file exists it is returned without asking the store for the object's ETag.

    Raises ThumbnailSizeError for a size not in `allowed_sizes`, ObjectNotFoundError when no
    indexed image (or no object) has this id, ImageDecodeError when the object is not a decodable
    image, DecodeBusyError when the decode budget had no room within `BUDGET_WAIT` seconds.
    """
    if size not in allowed_sizes(services):
        sizes = ", ".join(str(s) for s in allowed_sizes(services))
        raise ThumbnailSizeError(f"thumbnail size must be one of {sizes} (got {size})")
    doc = services.index.get(doc_id)
    if doc is None:
        raise ObjectNotFoundError(f"no indexed image with id {doc_id!r}")
    if version is not None and is_version(version):
        known = thumbnail_path(services, doc.id, size, version)
        if known.is_file():
            return known
    info = services.store.head(doc.key)
    path = thumbnail_path(services, doc.id, size, version_tag(info.etag))
    if path.is_file():
        return path
    with _lock_for(str(path)):
        if path.is_file():  # another request finished it while this one waited
            return path
        data = services.store.get(doc.key)
        pixel_budget.configure(services.settings.decode_memory_mb)
        thumb = render_thumbnail(data, size, services.settings.max_pixels)
        write_atomically(path, thumb, prefix=f".{path.stem}-", suffix=".tmp")
        _remove_other_versions(path, doc.id, size)
    return path


def render_thumbnail(data: bytes, size: int, max_pixels: int) -> bytes:
    """JPEG bytes of the upright image scaled so that its longest side is at most `size`."""
    decoded = decode_image(
        data, max_pixels=max_pixels, draft_size=(size, size), budget_wait=BUDGET_WAIT
    )
    image = decoded.image
    image.thumbnail((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    try:
        image.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True)
    except (OSError, ValueError) as exc:
        raise ImageDecodeError(f"cannot encode a thumbnail: {exc}") from exc
    return buffer.getvalue()


def _lock_for(key: str) -> threading.Lock:
    # one generator per file in this process; across processes the atomic rename keeps it safe
    with _locks_guard:
        if len(_locks) > 1024:
            _locks.clear()
        return _locks.setdefault(key, threading.Lock())


def _remove_other_versions(current: Path, doc_id: str, size: int) -> None:
    for old in current.parent.glob(f"{doc_id}-{size}-*.jpg"):
        if old != current:
            old.unlink(missing_ok=True)
