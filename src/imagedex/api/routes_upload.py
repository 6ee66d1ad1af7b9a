"""Routes: uploading an image (stored in the bucket and queued for the worker)."""

from __future__ import annotations

import posixpath
import re
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, UploadFile

from imagedex.api.deps import ServicesDep, UploaderDep
from imagedex.errors import InvalidKeyError
from imagedex.ingest.imaging import sniff_content_type
from imagedex.ingest.upload import upload_bytes

router = APIRouter()

_UNSAFE_NAME = re.compile(r"[^\w.\- ]+", re.UNICODE)


def upload_key(filename: str | None) -> str:
    """`uploads/<uuid>/<clean file name>`: unique, so two uploads of `IMG_0001.jpg` both survive."""
    name = _UNSAFE_NAME.sub("_", posixpath.basename(filename or "")).strip(" .") or "image"
    return f"uploads/{uuid.uuid4().hex[:12]}/{name[:200]}"


@router.post("/api/images", status_code=202, tags=["images"])
async def upload_image(
    services: ServicesDep,
    _who: UploaderDep,  # an editor within uploads_per_minute (429 beyond)
    file: Annotated[UploadFile, File(description="the image")],
    title: Annotated[str | None, Form(max_length=500)] = None,
) -> dict[str, Any]:
    settings = services.settings
    data = await file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise HTTPException(413, f"upload is larger than {settings.max_upload_bytes} bytes")
    if not data:
        raise HTTPException(400, "the uploaded file is empty")
    content_type = sniff_content_type(data)
    if content_type is None:
        raise HTTPException(415, "the uploaded file is not a supported image type")
    key = upload_key(file.filename)
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
