"""FastAPI application: upload, image details and content, health; the other routers."""

from __future__ import annotations

import posixpath
import re
import uuid
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from imagedex import __version__
from imagedex.access.policy import auth_required, host_allowed
from imagedex.api import (
    pages,
    routes_access,
    routes_alerts,
    routes_dashboard,
    routes_deliveries,
    routes_reports,
    routes_search,
)
from imagedex.api.deps import UploaderDep, optional_principal, require_role
from imagedex.errors import ImagedexError, InvalidKeyError, ObjectNotFoundError
from imagedex.ingest.imaging import sniff_content_type
from imagedex.ingest.upload import upload_bytes
from imagedex.search import document_json
from imagedex.services import Services
from imagedex.storage import LocalPaths, PresignedLinks

_UNSAFE_NAME = re.compile(r"[^\w.\- ]+", re.UNICODE)


def _upload_key(filename: str | None) -> str:
    """`uploads/<uuid>/<clean file name>`: unique, so two uploads of `IMG_0001.jpg` both survive."""
    name = _UNSAFE_NAME.sub("_", posixpath.basename(filename or "")).strip(" .") or "image"
    return f"uploads/{uuid.uuid4().hex[:12]}/{name[:200]}"


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="imagedex",
        version=__version__,
        description="Search images by what they show.",
    )
    settings = services.settings
    app.state.services = services
    viewer = [Depends(require_role("viewer"))]
    if not auth_required(settings):

        @app.middleware("http")
        async def refuse_rebound_hosts(request: Request, call_next: Any) -> Response:
            if host_allowed(request.headers.get("host", ""), settings):
                response: Response = await call_next(request)
                return response
            return JSONResponse(
                {"detail": "unknown Host; add it to the allowed_hosts setting or turn auth on"},
                status_code=421,
            )

    editor = [Depends(require_role("editor"))]

    @app.get("/healthz", tags=["ops"])
    def healthz(request: Request) -> dict[str, Any]:
        if optional_principal(request) is None:  # counts only for callers who may see them
            return {"status": "ok", "version": __version__}
        stats = services.queue.stats()
        return {
            "status": "ok",
            "version": __version__,
            "documents": services.index.count(),
            "queue": {"visible": stats.visible, "in_flight": stats.in_flight, "dead": stats.dead},
        }

    @app.post("/api/images", status_code=202, tags=["images"], dependencies=editor)
    async def upload_image(
        _who: UploaderDep,  # an editor within uploads_per_minute (429 beyond)
        file: Annotated[UploadFile, File(description="the image")],
        title: Annotated[str | None, Form(max_length=500)] = None,
    ) -> dict[str, Any]:
        data = await file.read(settings.max_upload_bytes + 1)
        if len(data) > settings.max_upload_bytes:
            raise HTTPException(413, f"upload is larger than {settings.max_upload_bytes} bytes")
        if not data:
            raise HTTPException(400, "the uploaded file is empty")
        content_type = sniff_content_type(data)
        if content_type is None:
            raise HTTPException(415, "the uploaded file is not a supported image type")
        key = _upload_key(file.filename)
        title = title or posixpath.basename(file.filename or "") or None
        try:
            upload = upload_bytes(services, key, data, title=title, content_type=content_type)
        except InvalidKeyError as exc:
            raise HTTPException(400, str(exc)) from exc
        return {
            "id": upload.doc_id,
            "key": upload.key,
            "etag": upload.etag,
            "size": upload.size,
            "status": "queued",
        }

    @app.get("/api/images/{doc_id}", tags=["images"], dependencies=viewer)
    def get_image(doc_id: str) -> dict[str, Any]:
        doc = services.index.get(doc_id)
        if doc is None:
            raise HTTPException(404, f"no indexed image with id {doc_id!r}")
        return document_json(doc)

    @app.get(
        "/api/images/{doc_id}/content", tags=["images"], response_model=None, dependencies=viewer
    )
    def get_image_content(doc_id: str) -> Response:
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
                link = store.presigned_url(doc.key, int(settings.link_ttl))
                return RedirectResponse(link, status_code=307)
            return Response(store.get(doc.key), media_type=doc.content_type or None)
        except ObjectNotFoundError as exc:
            raise HTTPException(404, str(exc)) from exc

    @app.get("/api/queue", tags=["ops"], dependencies=viewer)
    def queue_state(limit: Annotated[int, Query(ge=0, le=1000)] = 20) -> dict[str, Any]:
        stats = services.queue.stats()
        return {
            "visible": stats.visible,
            "in_flight": stats.in_flight,
            "dead": stats.dead,
            "dead_letters": [
                {"id": d.id, "error": d.error, "receive_count": d.receive_count, "body": d.body}
                for d in services.queue.dead_letters(limit)
            ],
        }

    for module in (
        routes_search,
        routes_access,
        routes_dashboard,
        routes_reports,
        routes_alerts,
        routes_deliveries,
    ):
        app.include_router(module.router)
    app.include_router(pages.router)  # last: the web app's catch-all page routes

    @app.exception_handler(ImagedexError)
    async def imagedex_error(_request: object, exc: ImagedexError) -> Response:

        return JSONResponse({"detail": str(exc)}, status_code=503)

    return app
