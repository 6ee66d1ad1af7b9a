"""A local folder acting as a bucket: the embedded default object store."""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from imagedex.errors import InvalidKeyError, ObjectNotFoundError
from imagedex.storage.base import (
    ObjectInfo,
    ObjectStore,
    ObjectTooLargeError,
    content_etag,
    validate_key,
)

_META_DIR = ".imagedex-meta"
_UPLOAD_PREFIX = ".upload-"


def write_atomically(path: Path, data: bytes, prefix: str, suffix: str = "") -> None:
    """Write to a temporary file beside `path`, then rename it into place, so that a reader never
    sees half a file. The temporary name starts with `prefix` (a dot hides it from listings)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class LocalObjectStore(ObjectStore):
    """Objects are files under `root`; the folder's name is the bucket name.

    ETags are the MD5 of the content, like S3's for single-part uploads; they and the user
    metadata (S3's x-amz-meta-*) live in a sidecar folder so `head` does not re-read large files.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.bucket = self.root.name

    def _path(self, key: str) -> Path:
        validate_key(key)
        if key.split("/")[0] == _META_DIR:
            raise InvalidKeyError(f"object key {key!r} uses a reserved prefix")
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise InvalidKeyError(f"object key {key!r} escapes the bucket folder")
        return path

    def _etag_path(self, key: str) -> Path:
        return self.root / _META_DIR / (hashlib.sha256(key.encode()).hexdigest() + ".json")

    def _read_sidecar(self, key: str) -> dict[str, Any]:
        try:
            data = json.loads(self._etag_path(key).read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _write_sidecar(self, key: str, sidecar: dict[str, Any]) -> None:
        path = self._etag_path(key)
        try:
            path.parent.mkdir(exist_ok=True)
            path.write_text(json.dumps(sidecar))
        except OSError:
            pass  # the sidecar is a cache and a place for metadata; the object itself is saved

    def _put(
        self, key: str, data: bytes, content_type: str, metadata: dict[str, str]
    ) -> ObjectInfo:
        path = self._path(key)
        write_atomically(path, data, prefix=_UPLOAD_PREFIX)
        self._write_sidecar(
            key,
            {
                "mtime_ns": path.stat().st_mtime_ns,
                "etag": content_etag(data),
                "content_type": content_type,
                "metadata": metadata,
            },
        )
        return self.head(key)

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise self._not_found(key) from exc

    def read(self, key: str, max_bytes: int) -> bytes:
        path = self._path(key)
        try:
            with path.open("rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size > max_bytes:
                    raise ObjectTooLargeError.of(key, size, max_bytes)
                data = handle.read(max_bytes + 1)
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise self._not_found(key) from exc
        if len(data) > max_bytes:  # grew while being read
            raise ObjectTooLargeError.of(key, len(data), max_bytes)
        return data

    def open_path(self, key: str) -> Path:
        """The file behind a key, for streaming responses."""
        path = self._path(key)
        if not path.is_file():
            raise self._not_found(key)
        return path

    def _sidecar_for(self, key: str, path: Path, mtime_ns: int) -> dict[str, Any]:
        """The sidecar if it matches the file on disk, else a fresh one (changed outside us)."""
        sidecar = self._read_sidecar(key)
        if sidecar.get("mtime_ns") == mtime_ns and sidecar.get("etag"):
            return sidecar
        digest = hashlib.md5(usedforsecurity=False)
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        sidecar = {"mtime_ns": mtime_ns, "etag": digest.hexdigest(), "metadata": {}}
        self._write_sidecar(key, sidecar)
        return sidecar

    def head(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            stat = path.stat()
        except FileNotFoundError as exc:
            raise self._not_found(key) from exc
        if not path.is_file():
            raise self._not_found(key)
        sidecar = self._sidecar_for(key, path, stat.st_mtime_ns)
        return ObjectInfo(
            bucket=self.bucket,
            key=key,
            size=stat.st_size,
            etag=str(sidecar["etag"]),
            content_type=sidecar.get("content_type")
            or mimetypes.guess_type(key)[0]
            or "application/octet-stream",
            last_modified=datetime.fromtimestamp(stat.st_mtime, UTC).isoformat(),
            metadata=dict(sidecar.get("metadata") or {}),
        )

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        self._etag_path(key).unlink(missing_ok=True)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if d != _META_DIR)
            for name in sorted(filenames):
                if name.startswith(_UPLOAD_PREFIX):
                    continue
                rel = (Path(dirpath) / name).relative_to(self.root).as_posix()
                if rel.startswith(prefix):
                    try:
                        yield self.head(rel)
                    except (ObjectNotFoundError, InvalidKeyError):
                        continue

    def emits_events(self) -> bool:
        """A folder sends no notifications: whoever writes through imagedex emits the event."""
        return False

    def location(self, key: str) -> str:
        return self._path(key).as_uri()


def open_url(url: str) -> LocalObjectStore:
    """The store for a `file:///path/to/folder` URL."""
    return LocalObjectStore(unquote(urlparse(url).path))
