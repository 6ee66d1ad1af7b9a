"""The ObjectStore base, the optional capabilities a store may have, and key validation."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from imagedex.errors import ImagedexError, InvalidKeyError, ObjectNotFoundError

MAX_KEY_BYTES = 1024  # the S3 limit


class ObjectTooLargeError(ImagedexError):
    """An object larger than imagedex accepts (the `max_upload_bytes` setting)."""

    @classmethod
    def of(cls, key: str, size: int, limit: int) -> ObjectTooLargeError:
        return cls(
            f"{key!r} is {size} bytes, more than the {limit} accepted (setting max_upload_bytes)"
        )


@dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int
    etag: str
    content_type: str
    last_modified: str
    metadata: dict[str, str] = field(default_factory=dict)


def content_etag(data: bytes) -> str:
    """The ETag S3 gives a single-part upload (and the local store every object): the MD5."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class ObjectStore(ABC):
    """A bucket of objects addressed by key (a local folder or an S3 bucket)."""

    bucket: str
    #: Where uploads of files and folders go below the bucket root ("" or "some/prefix/").
    prefix: str = ""

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str = "",
        metadata: dict[str, str] | None = None,
    ) -> ObjectInfo:
        validate_key(key)
        return self._put(key, data, content_type, dict(metadata or {}))

    @abstractmethod
    def _put(
        self, key: str, data: bytes, content_type: str, metadata: dict[str, str]
    ) -> ObjectInfo:
        """Store an object under a key `put` has already validated."""

    @abstractmethod
    def get(self, key: str) -> bytes: ...

    def read(self, key: str, max_bytes: int) -> bytes:
        """The object's bytes, or ObjectTooLargeError when it holds more than `max_bytes`;
        stores override it to stop reading there (the object may have grown since `head`)."""
        data = self.get(key)
        if len(data) > max_bytes:
            raise ObjectTooLargeError.of(key, len(data), max_bytes)
        return data

    @abstractmethod
    def head(self, key: str) -> ObjectInfo: ...

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]: ...

    @abstractmethod
    def emits_events(self) -> bool:
        """True when the store itself notifies the queue of new objects (S3), False for folders."""

    @abstractmethod
    def location(self, key: str) -> str:
        """The object's canonical address, stored as the document's `s3_location`."""

    def _not_found(self, key: str) -> ObjectNotFoundError:
        """The error for a key that names no object in this bucket."""
        return ObjectNotFoundError(f"no object {key!r} in bucket {self.bucket!r}")


@runtime_checkable
class LocalPaths(Protocol):
    """A store whose objects are files on this machine (served straight from disk)."""

    def open_path(self, key: str) -> Path: ...


@runtime_checkable
class PresignedLinks(Protocol):
    """A store that can hand out time-limited links to read an object without credentials."""

    def presigned_url(self, key: str, expires: int) -> str: ...


def validate_key(key: str) -> str:
    """Reject keys that are empty, too long, absolute, or step out of the bucket (`..`)."""
    if not key or not key.strip():
        raise InvalidKeyError("object key is empty")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidKeyError(f"object key is longer than {MAX_KEY_BYTES} bytes")
    if "\x00" in key or any(ord(c) < 32 for c in key):
        raise InvalidKeyError(f"object key {key!r} contains control characters")
    if key.startswith("/") or "\\" in key:
        raise InvalidKeyError(f"object key {key!r} must be relative and use '/' separators")
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise InvalidKeyError(f"object key {key!r} has an empty, '.' or '..' path segment")
    return key
