"""Object stores: where the images themselves live."""

from __future__ import annotations

from urllib.parse import unquote, urlparse

from imagedex.errors import ConfigError
from imagedex.storage.base import ObjectInfo, ObjectStore, validate_key
from imagedex.storage.local import LocalObjectStore

__all__ = ["LocalObjectStore", "ObjectInfo", "ObjectStore", "open_store", "validate_key"]


def open_store(url: str) -> ObjectStore:
    """`file:///folder` (the folder is the bucket) or `s3://bucket[/prefix]`."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return LocalObjectStore(unquote(parsed.path))
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ConfigError(f"object store URL {url!r} names no bucket")
        from imagedex.storage.s3 import S3ObjectStore

        return S3ObjectStore(parsed.netloc, prefix=unquote(parsed.path))
    raise ConfigError(
        f"unsupported object store URL {url!r}; use file:///path/to/folder or s3://bucket"
    )
