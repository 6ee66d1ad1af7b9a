"""Request bodies bounded before they are read, on every route and before anyone is
authenticated: FastAPI reads a route's whole body before its dependencies run, so without this
an anonymous client could make the API buffer any amount of data before its 401.

A declared `Content-Length` over the route's limit is answered 413 without reading a byte; a
body without one (chunked) is counted as it streams in and cut off at the limit.
"""

from __future__ import annotations

import json
from typing import Any

from imagedex.config import Settings
from imagedex.ingest.events import MAX_EVENT_BYTES

Scope = dict[str, Any]
Message = dict[str, Any]

UPLOAD_ROUTE = ("POST", "/api/images")
#: multipart boundaries, part headers and the title field around an uploaded file
MULTIPART_ALLOWANCE = 64 * 1024
#: Rekognition's JSON requests: a 5 MB image as base64, plus the other parameters
REKOGNITION_PATH = "/rekognition"
REKOGNITION_BODY = (5 * 1024 * 1024 + 2) // 3 * 4 + 64 * 1024
#: bucket notifications: no larger than the parser reads (an S3 event is about 1 KiB)
NOTIFICATIONS_ROUTE = ("POST", "/api/notifications")


class _BodyTooLarge(Exception):
    """Raised from `receive` so the app stops reading; never reaches the client as such."""


def body_limit(method: str, path: str, settings: Settings) -> tuple[int, str]:
    """The most bytes a request body may have on this route, and the 413 message."""
    if (method, path.rstrip("/")) == UPLOAD_ROUTE:
        return (
            settings.max_upload_bytes + MULTIPART_ALLOWANCE,
            f"upload is larger than {settings.max_upload_bytes} bytes (setting max_upload_bytes)",
        )
    if (method, path.rstrip("/")) == NOTIFICATIONS_ROUTE:
        return MAX_EVENT_BYTES, f"a bucket notification is at most {MAX_EVENT_BYTES} bytes"
    if method == "POST" and path.rstrip("/") == REKOGNITION_PATH:
        return REKOGNITION_BODY, "Image.Bytes holds more than 5242880 bytes"
    return (
        settings.max_request_bytes,
        f"request body is larger than {settings.max_request_bytes} bytes "
        "(setting max_request_bytes)",
    )


def _declared_length(scope: Scope) -> int | None:
    """Content-Length as sent; -1 when it is not a number (a malformed request)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else -1
    return None


async def _answer(send: Any, status: int, detail: str, scope: Scope | None = None) -> None:
    content_type = b"application/json"
    body = json.dumps({"detail": detail}).encode()
    if status == 413 and scope and scope["path"].rstrip("/") == REKOGNITION_PATH:
        # Rekognition's own answer, so AWS SDKs raise ImageTooLargeException
        status, content_type = 400, b"application/x-amz-json-1.1"
        body = json.dumps({"__type": "ImageTooLargeException", "message": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),  # the rest of the body is not wanted
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """ASGI middleware: 413 for bodies over `body_limit`, without buffering them."""

    def __init__(self, app: Any, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, detail = body_limit(scope["method"], scope["path"], self.settings)
        declared = _declared_length(scope)
        if declared is not None and declared < 0:
            await _answer(send, 400, "the Content-Length header is not a number")
            return
        if declared is not None and declared > limit:
            await _answer(send, 413, detail, scope)
            return
        received = 0
        exceeded = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, exceeded
            message: Message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # whatever the app says about a body it never got whole: 413 below
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not exceeded:  # the app's own error; _BodyTooLarge however the app wrapped it
                raise
        if exceeded and not started:
            await _answer(send, 413, detail, scope)
