"""Routes: uploading an image (stored in the bucket and queued for the worker), and where an
upload stands (indexed, dead-lettered with the reason, replaced, or still queued)."""

from __future__ import annotations

import posixpath
import re
import threading
import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import (
    APIRouter,
    File,
    Form,
    Header,
    HTTPException,
    Query,
    Request,
    Response,
    UploadFile,
)

from imagedex.api.deps import ServicesDep, UploaderDep, ViewerDep
from imagedex.api.idempotency import (
    HEADER,
    IdempotencyStore,
    check_key,
    fingerprint,
    object_prefix,
)
from imagedex.documents import document_id
from imagedex.errors import ImageDecodeError, InvalidKeyError, ObjectNotFoundError
from imagedex.ingest.imaging import require_image
from imagedex.ingest.titles import clean_title
from imagedex.ingest.upload import DeadLetterReasons, Upload, check_uploads, upload_bytes
from imagedex.services import Services
from imagedex.storage.base import validate_key

router = APIRouter()

_UNSAFE_NAME = re.compile(r"[^\w.\- ]+", re.UNICODE)
_store_lock = threading.Lock()


def upload_key(filename: str | None, unique: str | None = None) -> str:
    """`uploads/<unique>/<clean file name>`: `unique` is random unless the upload is idempotent,
    so two uploads of `IMG_0001.jpg` both survive."""
    name = _UNSAFE_NAME.sub("_", posixpath.basename(filename or "")).strip(" .") or "image"
    return f"uploads/{unique or uuid.uuid4().hex[:12]}/{name[:200]}"


def status_url(key: str, etag: str) -> str:
    return "/api/uploads/status?" + urlencode({"key": key, "etag": etag})


def idempotency_store(request: Request, services: Services) -> IdempotencyStore:
    store: IdempotencyStore | None = getattr(request.app.state, "idempotency", None)
    if store is None:
        with _store_lock:
            store = getattr(request.app.state, "idempotency", None)
            if store is None:
                store = request.app.state.idempotency = IdempotencyStore(services.settings.data_dir)
    return store


@router.post("/api/images", status_code=202, tags=["images"])
async def upload_image(
    request: Request,
    response: Response,
    services: ServicesDep,
    who: UploaderDep,  # an editor within uploads_per_minute (429 beyond)
    file: Annotated[UploadFile, File(description="the image")],
    title: Annotated[str | None, Form(max_length=500)] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            description="makes a retry safe: the same key with the same file, name and title "
            "gets the first answer again (header Idempotent-Replayed: true), never a second "
            "image; with anything else, 422. Kept for a day per caller.",
        ),
    ] = None,
) -> dict[str, Any]:
    """Store an image and queue it for analysis. Without an Idempotency-Key every upload is a
    new image, even of identical bytes under the same name (see docs/web.md)."""
    settings = services.settings
    data = await file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise HTTPException(413, f"upload is larger than {settings.max_upload_bytes} bytes")
    if not data:
        raise HTTPException(400, "the uploaded file is empty")
    try:
        content_type = require_image(data)
    except ImageDecodeError as exc:
        raise HTTPException(415, f"the uploaded file is not a supported image type: {exc}") from exc
    unique = None
    store = None
    caller = f"{who.via}:{who.name}"
    if idempotency_key is not None:
        check_key(idempotency_key)
        store = idempotency_store(request, services)
        request_print = fingerprint(data, file.filename or "", title or "")
        replayed = store.begin(caller, idempotency_key, request_print)
        if replayed is not None:
            response.headers["Idempotent-Replayed"] = "true"
            return replayed
        unique = object_prefix(caller, idempotency_key)
    key = upload_key(file.filename, unique)
    title = clean_title(title or posixpath.basename(file.filename or "")) or None
    try:
        try:
            upload = upload_bytes(services, key, data, title=title, content_type=content_type)
        except InvalidKeyError as exc:
            raise HTTPException(400, str(exc)) from exc
    except BaseException:
        if store is not None and idempotency_key is not None:
            store.abandon(caller, idempotency_key)  # a retry is handled afresh
        raise
    answer = {
        "id": upload.doc_id,
        "key": upload.key,
        "etag": upload.etag,
        "size": upload.size,
        "status": "queued",
        "status_url": status_url(upload.key, upload.etag),
    }
    if store is not None and idempotency_key is not None:
        store.finish(caller, idempotency_key, answer)
    return answer


@router.get("/api/uploads/status", tags=["images"])
def upload_status(
    request: Request,
    services: ServicesDep,
    _who: ViewerDep,
    key: Annotated[str, Query(max_length=1024, description="the key the upload answered")],
    etag: Annotated[str, Query(max_length=100, description="the ETag the upload answered")],
) -> dict[str, Any]:
    """Where one uploaded version stands: `indexed`, `failed` (dead-lettered; `reason` says
    why), `replaced` (the key holds other bytes now) or `pending` (queued or being analysed)."""
    try:
        validate_key(key)
    except InvalidKeyError as exc:
        raise HTTPException(400, str(exc)) from exc
    upload = Upload(key, key, document_id(services.store.bucket, key), etag, 0)
    # one reading of the dead letters per app, shared by every page polling every second
    reasons = getattr(request.app.state, "dead_letter_reasons", None)
    if reasons is None:
        reasons = request.app.state.dead_letter_reasons = DeadLetterReasons()
    (outcome,) = check_uploads(services, [upload], reasons.get(services))
    status, reason = outcome.status, outcome.reason
    if status == "pending":
        try:
            stored = services.store.head(key)
        except ObjectNotFoundError as exc:
            raise HTTPException(404, f"no uploaded object with key {key!r}") from exc
        if stored.etag != etag:
            status, reason = "replaced", "another upload replaced it before it was indexed"
    return {"id": upload.doc_id, "key": key, "etag": etag, "status": status, "reason": reason}
