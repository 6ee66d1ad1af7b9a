"""The ObjectStore protocol and key validation shared by every store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from imagedex.errors import InvalidKeyError

MAX_KEY_BYTES = 1024  # the S3 limit


@dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int
    etag: str
    content_type: str
    last_modified: str
    metadata: dict[str, str] = field(default_factory=dict)


class ObjectStore(Protocol):
    """A bucket of objects addressed by key (a local folder or an S3 bucket)."""

    bucket: str

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str = "",
        metadata: dict[str, str] | None = None,
    ) -> ObjectInfo: ...

    def get(self, key: str) -> bytes: ...

    def head(self, key: str) -> ObjectInfo: ...

    def delete(self, key: str) -> None: ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]: ...

    def emits_events(self) -> bool:
        """True when the store itself notifies the queue of new objects (S3), False for folders."""
        ...

    def location(self, key: str) -> str:
        """The object's canonical address, stored as the document's `s3_location`."""
        ...


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
