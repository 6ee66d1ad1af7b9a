"""Object stores: where the images themselves live."""

from __future__ import annotations

from urllib.parse import unquote, urlparse

from imagedex.errors import ConfigError
from imagedex.storage.base import ObjectInfo, ObjectStore, validate_key
from imagedex.storage.local import LocalObjectStore

__all__ = ["LocalObjectStore", "ObjectInfo", "ObjectStore", "open_store", "validate_key"]


def open_store(url: str) -> ObjectStore:
    """Open the store a URL names: `file:///folder` (the folder is the bucket)."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return LocalObjectStore(unquote(parsed.path))
    raise ConfigError(f"unsupported object store URL {url!r}; use file:///path/to/folder")
