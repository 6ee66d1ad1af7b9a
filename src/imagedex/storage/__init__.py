"""Object stores: where the images themselves live."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlparse

from imagedex.registry import Registry, UnknownNameError
from imagedex.storage.base import (
    LocalPaths,
    ObjectInfo,
    ObjectStore,
    PresignedLinks,
    validate_key,
)
from imagedex.storage.local import LocalObjectStore

__all__ = [
    "STORES",
    "LocalObjectStore",
    "LocalPaths",
    "ObjectInfo",
    "ObjectStore",
    "PresignedLinks",
    "open_store",
    "validate_key",
]

#: Store openers by URL scheme; each takes the whole URL. Packages add schemes through the
#: `imagedex.stores` entry point group.
STORES: Registry[Callable[[str], ObjectStore]] = Registry("object store scheme", "imagedex.stores")
STORES.register("file", "imagedex.storage.local:open_url")
STORES.register("s3", "imagedex.storage.s3:open_url")


def open_store(url: str) -> ObjectStore:
    """`file:///folder` (the folder is the bucket) or `s3://bucket[/prefix]`."""
    scheme = urlparse(url).scheme
    if scheme not in STORES:
        raise UnknownNameError(
            f"unsupported object store URL {url!r}; use file:///path/to/folder or s3://bucket"
        )
    return STORES.resolve(scheme)(url)
