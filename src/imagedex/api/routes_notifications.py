"""Route: bucket notifications that an S3-compatible store (MinIO's webhook target, Ceph RGW's
HTTP endpoint) posts, checked with the worker's own parser and queued for the worker.

The caller is an editor (an API key, as MinIO's `auth_token` sends it) or presents the
`notification_token` setting, in `Authorization: Bearer` or, for Ceph RGW, whose HTTP endpoint
sends no headers of its own, in `?token=`.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from imagedex.access.store import KEY_PREFIX
from imagedex.api.deps import ServicesDep, require_role
from imagedex.errors import EventParseError
from imagedex.ingest.events import parse_notification
from imagedex.services import Services

router = APIRouter()

NOTIFICATIONS_PATH = "/api/notifications"
_editor = require_role("editor")


def _presented_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and not token.strip().startswith(KEY_PREFIX):
        return token.strip()
    return request.query_params.get("token")


def notifier(request: Request) -> str:
    """Who is posting: "token" for the shared secret, else the editor's name (401/403 otherwise)."""
    expected = request.app.state.services.settings.notification_token
    presented = _presented_token(request)
    if presented is not None:
        if expected and hmac.compare_digest(presented.encode(), expected.encode()):
            return "token"
        raise HTTPException(
            401,
            "the token is not the notification_token setting"
            if expected
            else "no notification_token is set: send an editor API key (Bearer idx_...)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return _editor(request).name


def _queue(services: Services, body: bytes) -> int:
    """Parse `body` as the worker will, refuse what it could never index, queue the rest."""
    try:
        text = body.decode("utf-8")
        events = parse_notification(text)
    except UnicodeDecodeError:
        raise HTTPException(400, "the notification is not UTF-8 text") from None
    except EventParseError as exc:
        raise HTTPException(400, str(exc)) from None
    bucket = services.store.bucket
    foreign = sorted({e.bucket for e in events if e.bucket != bucket})
    if foreign:
        raise HTTPException(
            400, f"events for bucket {', '.join(foreign)}: this deployment's store is {bucket!r}"
        )
    if events:  # test events and kinds with nothing to index are answered, not queued
        services.queue.send(text)
    return len(events)


@router.post(NOTIFICATIONS_PATH, tags=["ingest"])
async def receive_notification(
    request: Request,
    services: ServicesDep,
    _who: Annotated[str, Depends(notifier)],
) -> dict[str, Any]:
    """Queue the object events of one S3 event notification (`{"Records": [...]}`, as MinIO and
    Ceph RGW post them; SNS envelopes and EventBridge events too). Answers 200 with the number of
    events queued (0 for a test event); 400 with the reason, queueing nothing, for a body the
    worker could not index."""
    body = await request.body()
    events = await run_in_threadpool(_queue, services, body)
    return {"events": events, "queued": events > 0}
