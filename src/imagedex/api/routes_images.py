"""Routes: one indexed image's details and its content (the original file)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, RedirectResponse, Response

from imagedex.api.deps import ServicesDep, ViewerDep
from imagedex.errors import ObjectNotFoundError
from imagedex.search import document_json
from imagedex.storage import LocalPaths, PresignedLinks

router = APIRouter()


@router.get("/api/images/{doc_id}", tags=["images"])
def get_image(services: ServicesDep, _who: ViewerDep, doc_id: str) -> dict[str, Any]:
    doc = services.index.get(doc_id)
    if doc is None:
        raise HTTPException(404, f"no indexed image with id {doc_id!r}")
    return document_json(doc)


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
