"""Routes: one indexed image's details, its content (the original file), deleting it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, RedirectResponse, Response

from imagedex.access.roles import role_allows
from imagedex.api.deps import EditorDep, ServicesDep, ViewerDep
from imagedex.errors import ObjectNotFoundError
from imagedex.search import document_json, with_near_duplicates
from imagedex.storage import LocalPaths, PresignedLinks

router = APIRouter()


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
    return with_near_duplicates(services, doc, data)


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
