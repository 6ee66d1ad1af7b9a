"""Routes: one indexed image's details, its content (the original file), deleting it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, RedirectResponse, Response

from imagedex.access.roles import role_allows
from imagedex.api.deps import EditorDep, ServicesDep, ViewerDep
from imagedex.documents import ImageDocument
from imagedex.errors import ObjectNotFoundError
from imagedex.search import document_json
from imagedex.services import Services
from imagedex.storage import LocalPaths, PresignedLinks

router = APIRouter()


#: How many near-duplicates an image page lists (each is one index lookup).
NEAR_DUPLICATES_SHOWN = 20


def near_duplicate_links(services: Services, doc: ImageDocument) -> list[dict[str, str]]:
    """The indexed images that look almost the same as `doc`, whichever was indexed first.

    Asked of the index now rather than read from `doc.near_duplicates` (which an image gets
    when it is indexed, so only the newer of two holds it, and which keeps deleted ones)."""
    if not doc.phash:
        return []
    links = []
    for other_id in services.index.near_duplicates(doc.phash, NEAR_DUPLICATES_SHOWN + 1):
        other = services.index.get(other_id) if other_id != doc.id else None
        if other is not None:
            links.append({"id": other.id, "title": other.title, "page": f"/images/{other.id}"})
    return links[:NEAR_DUPLICATES_SHOWN]


@router.get("/api/images/{doc_id}", tags=["images"])
def get_image(services: ServicesDep, who: ViewerDep, doc_id: str) -> dict[str, Any]:
    """One image's document. `near_duplicates` lists the ids of the images that look almost
    the same (both ways), `near_duplicate_images` their id, title and web page. `s3_location`,
    the store's own address of the object (a path on the server for a local folder), is
    shown to admins only; everyone sees the bucket and the key."""
    doc = services.index.get(doc_id)
    if doc is None:
        raise HTTPException(404, f"no indexed image with id {doc_id!r}")
    data = document_json(doc)
    if not role_allows(who.role, "admin"):
        del data["s3_location"]
    duplicates = near_duplicate_links(services, doc)
    data["near_duplicates"] = [d["id"] for d in duplicates]
    data["near_duplicate_images"] = duplicates
    return data


@router.delete("/api/images/{doc_id}", tags=["images"])
def delete_image(services: ServicesDep, _who: EditorDep, doc_id: str) -> dict[str, Any]:
    """Delete an image: its document, its cached thumbnails and the stored object."""
    from imagedex.ingest.delete import delete_document

    doc = services.index.get(doc_id)
    if doc is None:
        raise HTTPException(404, f"no indexed image with id {doc_id!r} (already deleted?)")
    return delete_document(services, doc).to_dict()


@router.get("/api/images/{doc_id}/content", tags=["images"], response_model=None)
def get_image_content(services: ServicesDep, _who: ViewerDep, doc_id: str) -> Response:
    doc = services.index.get(doc_id)
    if doc is None:
        raise HTTPException(404, f"no indexed image with id {doc_id!r}")
    store = services.store
    try:
        if isinstance(store, LocalPaths):
            return FileResponse(
                store.open_path(doc.key),
                media_type=doc.content_type or None,
                headers={"Cache-Control": "private, max-age=3600"},
            )
        if isinstance(store, PresignedLinks):
            link = store.presigned_url(doc.key, int(services.settings.link_ttl))
            return RedirectResponse(link, status_code=307)
        return Response(store.get(doc.key), media_type=doc.content_type or None)
    except ObjectNotFoundError as exc:
        raise HTTPException(404, str(exc)) from exc
