"""Deleting an image: its document, its cached thumbnails and the stored object.

The order is chosen so that a crash at any step leaves nothing half-visible:

1. the document leaves the index: from then on no search, page or thumbnail shows the image;
   its faces leave the people store with it (a person left without faces goes too), so the
   People page never counts or shows a deleted image, whether or not a worker is running;
2. its thumbnails are removed (they are only served for indexed images);
3. the object is deleted from the bucket;
4. a "removed" event is queued (S3 sends its own): a worker that fetched the object just before
   step 3 and indexes it after step 1 has its stale document removed again when the event is
   processed, and any later "created" event for the key finds no object and removes instead.

A crash between steps 1 and 3 leaves the object in the bucket without a document; deleting it
again by its key finishes the job (`delete_object`); faces left by a crash after step 1 go when
the "removed" event is processed, as they always did.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from imagedex.documents import ImageDocument, document_id
from imagedex.errors import ObjectNotFoundError
from imagedex.ingest.upload import notify
from imagedex.people.recognise import forget_documents
from imagedex.services import Services
from imagedex.storage.base import ObjectInfo
from imagedex.thumbnails import remove_thumbnails


@dataclass(frozen=True)
class Deleted:
    """What one deletion removed."""

    id: str
    key: str
    title: str
    document: bool  # a document was removed from the index
    object: bool  # the object was in the bucket and is gone now
    thumbnails: int  # cached thumbnail files removed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def delete_document(services: Services, doc: ImageDocument) -> Deleted:
    """Remove an indexed image everywhere (see the module docstring for the order)."""
    removed = services.index.delete(doc.id)
    forget_documents(services.settings.data_dir, [doc.id])
    thumbnails = remove_thumbnails(services, doc.id)
    gone = _delete_stored(services, doc.key)
    return Deleted(doc.id, doc.key, doc.title, removed, gone is not None, thumbnails)


def delete_object(services: Services, key: str) -> Deleted:
    """Remove an object that has no document (an upload not yet indexed, or the rest of a
    deletion that stopped half-way)."""
    doc_id = document_id(services.store.bucket, key)
    removed = services.index.delete(doc_id)  # indexed meanwhile: still nothing half-visible
    forget_documents(services.settings.data_dir, [doc_id])
    thumbnails = remove_thumbnails(services, doc_id)
    gone = _delete_stored(services, key)
    return Deleted(doc_id, key, "", removed, gone is not None, thumbnails)


def _delete_stored(services: Services, key: str) -> ObjectInfo | None:
    """Delete the object and queue its "removed" event; what was there (None if nothing)."""
    store = services.store
    try:
        info = store.head(key)
    except ObjectNotFoundError:
        return None
    store.delete(key)
    notify(services, info, kind="removed")
    return info
