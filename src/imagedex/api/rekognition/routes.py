"""`POST /rekognition`: Amazon Rekognition's JSON 1.1 protocol (the operation in `X-Amz-Target`,
the parameters as a JSON object), so an unmodified boto3 `rekognition` client with
`endpoint_url=http://HOST:PORT/rekognition` talks to imagedex; and
`GET /rekognition/credentials`, where an API key's holder gets the SigV4 secret to sign with.

Who may call: with authentication off (loopback), anyone, whatever the request is signed with,
as for the rest of the API; with it on, a request signed (SigV4) with an API key's id and its
derived secret (`sigv4.py`), or carrying the API key itself (`Authorization: Bearer idx_...`).
Any live key's role will do for the Detect, List, Describe and Search operations; those that
change a face collection (CreateCollection, DeleteCollection, IndexFaces, DeleteFaces) need the
editor role, as changing the index does (AccessDeniedException otherwise). Calls per key (per
client address with authentication off) are limited to `uploads_per_minute`, like uploads, the
other requests that run the models; over it: ThrottlingException.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from imagedex.access.control import AccessControl
from imagedex.access.policy import load_secret
from imagedex.access.ratelimit import RateLimiter
from imagedex.access.roles import role_allows
from imagedex.access.store import KEY_PREFIX, ApiKey
from imagedex.api.deps import check_same_origin, client_ip, get_access, get_services
from imagedex.api.rekognition import sigv4
from imagedex.api.rekognition.collection_ops import COLLECTION_OPERATIONS, WRITES, FaceContext
from imagedex.api.rekognition.collections import CollectionStore
from imagedex.api.rekognition.errors import RekognitionError, error_response, json_response
from imagedex.api.rekognition.face_match import FaceEngine
from imagedex.api.rekognition.images import FACE_DECODE_SIZE, RequestImage, load_image
from imagedex.api.rekognition.operations import (
    Analyzers,
    detect_faces,
    detect_labels,
    detect_moderation_labels,
)
from imagedex.api.rekognition.text import detect_text
from imagedex.errors import RecognitionError
from imagedex.recognition.ocr import TextAnalyzer

log = logging.getLogger("imagedex.api.rekognition")
router = APIRouter(tags=["rekognition"])
TARGET_PREFIX = "RekognitionService."
CONTENT_TYPES = ("application/x-amz-json-1.1", "application/json")
#: The account part of the collection ARNs this server gives out (there are no AWS accounts).
ACCOUNT = "000000000000"
_state_lock = threading.Lock()

Operation = Callable[[dict[str, Any], RequestImage, Analyzers], dict[str, Any]]


def _detect_text(
    params: dict[str, Any], image: RequestImage, analyzers: Analyzers
) -> dict[str, Any]:
    ocr = analyzers.get("ocr")
    assert isinstance(ocr, TextAnalyzer)
    return detect_text(params, image, ocr)


OPERATIONS: dict[str, Operation] = {
    "DetectLabels": detect_labels,
    "DetectModerationLabels": detect_moderation_labels,
    "DetectText": _detect_text,
    "DetectFaces": detect_faces,
}


@dataclass
class _State:
    """Per app: the analyzers, the rate limit, the deployment secret (read once), the face
    collections (opened on first use)."""

    analyzers: Analyzers
    limiter: RateLimiter
    secret: bytes
    faces: FaceEngine
    _collections: CollectionStore | None = None
    _keys: dict[str, Any] = field(default_factory=dict)

    def collections(self, request: Request) -> CollectionStore:
        with _state_lock:
            if self._collections is None:
                self._collections = CollectionStore(get_services(request).settings.data_dir)
            return self._collections


def _state(request: Request) -> _State:
    state: _State | None = getattr(request.app.state, "rekognition", None)
    if state is None:
        with _state_lock:
            state = getattr(request.app.state, "rekognition", None)
            if state is None:
                settings = get_services(request).settings
                state = _State(
                    Analyzers(settings),
                    RateLimiter(settings.uploads_per_minute, 60.0),
                    load_secret(settings),
                    FaceEngine(settings),
                )
                request.app.state.rekognition = state
    return state


def _key_id(access_key: str) -> str:
    return access_key.removeprefix(KEY_PREFIX)


def _live_key(access: AccessControl, access_key: str) -> ApiKey | None:
    key = access.store.key(_key_id(access_key))
    return None if key is None or key.revoked else key


def _signed_by(request: Request, body: bytes, access: AccessControl, state: _State) -> ApiKey:
    def secret_for(access_key: str) -> str | None:
        key = _live_key(access, access_key)
        return None if key is None else sigv4.derived_secret(state.secret, key.id)

    headers = {name: request.headers.getlist(name) for name in request.headers}
    key_id = sigv4.verify(
        request.headers["authorization"],
        request.method,
        request.scope.get("raw_path", b"").decode("latin-1") or request.url.path,
        request.scope.get("query_string", b"").decode("latin-1"),
        headers,
        body,
        secret_for,
        time.time(),
    )
    key = _live_key(access, key_id)
    if key is None:  # revoked in between
        raise RekognitionError("UnrecognizedClientException", "the API key was revoked")
    return key


def _presented_key(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return token.strip()
    return request.headers.get("x-api-key") or None


def _caller(request: Request, body: bytes, state: _State) -> tuple[str, str]:
    """Who is calling, as the rate limit counts them, and their role; RekognitionError when
    they may not call at all."""
    access = get_access(request)
    if not access.required:
        try:
            check_same_origin(request)  # a web page elsewhere may not drive a local server
        except HTTPException as exc:
            raise RekognitionError("AccessDeniedException", str(exc.detail)) from None
        return f"address:{client_ip(request)}", "admin"
    authorization = request.headers.get("authorization", "")
    if sigv4.is_sigv4(authorization):
        signer = _signed_by(request, body, access, state)
        return f"key:{signer.id}", signer.role
    token = _presented_key(request)
    if token is None:
        raise RekognitionError(
            "MissingAuthenticationTokenException",
            "sign the request (SigV4) with an imagedex API key id and its SigV4 secret "
            "(GET /rekognition/credentials), or send the API key as Authorization: Bearer",
        )
    key = access.store.verify_key(token)
    if key is None:
        raise RekognitionError("UnrecognizedClientException", "the API key is unknown or revoked")
    return f"key:{key.id}", key.role


def _operation(request: Request) -> str:
    target = request.headers.get("x-amz-target", "")
    name = target.removeprefix(TARGET_PREFIX)
    served = [*OPERATIONS, *COLLECTION_OPERATIONS]
    if not target.startswith(TARGET_PREFIX) or name not in served:
        raise RekognitionError(
            "UnknownOperationException",
            f"imagedex does not serve {target or 'a request without X-Amz-Target'}; "
            f"it serves {', '.join(TARGET_PREFIX + n for n in served)}",
        )
    return name


def _region(request: Request) -> str:
    """The region the caller signed for, so ARNs look like the ones it expects."""
    authorization = request.headers.get("authorization", "")
    if sigv4.is_sigv4(authorization):
        try:
            return sigv4.parse_authorization(authorization).region or "local"
        except RekognitionError:
            pass
    return "local"


def _params(request: Request, body: bytes) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in CONTENT_TYPES:
        raise RekognitionError(
            "SerializationException", f"send Content-Type: {CONTENT_TYPES[0]}, not {content_type!r}"
        )
    try:
        params = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise RekognitionError("SerializationException", "the body is not JSON") from None
    if not isinstance(params, dict):
        raise RekognitionError("SerializationException", "the body must be a JSON object")
    return params


def _handle(request: Request, body: bytes) -> Response:
    state = _state(request)
    name = _operation(request)
    caller, role = _caller(request, body, state)
    wait = state.limiter.hit(caller)
    if wait is not None:
        raise RekognitionError(
            "ThrottlingException",
            f"more than {state.limiter.limit} calls a minute (setting uploads_per_minute)",
            wait,
        )
    if name in WRITES and not role_allows(role, "editor"):
        raise RekognitionError(
            "AccessDeniedException",
            f"{name} changes a face collection: it needs an API key with the editor role, "
            f"not {role}",
        )
    params = _params(request, body)
    settings = get_services(request).settings
    store = get_services(request).store
    try:
        if name in COLLECTION_OPERATIONS:
            context = FaceContext(
                state.collections(request),
                state.faces,
                lambda: load_image(params, store, settings.max_pixels, FACE_DECODE_SIZE),
                f"aws:rekognition:{_region(request)}:{ACCOUNT}:collection/",
            )
            return json_response(COLLECTION_OPERATIONS[name](params, context))
        image = load_image(params, store, settings.max_pixels)
        return json_response(OPERATIONS[name](params, image, state.analyzers))
    except RecognitionError as exc:
        raise RekognitionError("InternalServerError", f"{name} failed: {exc}") from None


@router.post("/rekognition", include_in_schema=False)
@router.post("/rekognition/", include_in_schema=False)
async def rekognition(request: Request) -> Response:
    body = await request.body()
    try:
        return await run_in_threadpool(_handle, request, body)
    except RekognitionError as exc:
        return error_response(exc)
    except Exception:
        log.exception("Rekognition request failed")
        return error_response(
            RekognitionError("InternalServerError", "internal error; see the log")
        )


@router.get("/rekognition/credentials")
def credentials(
    request: Request,
    authorization: Annotated[str | None, Header(description="Bearer idx_<id>_<secret>")] = None,
) -> JSONResponse:
    """The SigV4 credentials of the API key sent with this request (`Authorization: Bearer
    idx_...` or `X-API-Key`), for boto3 and other AWS SDKs: the key id as the access key and a
    secret derived from it (docs/rekognition.md). Without authentication (loopback, auth off)
    SDKs may sign with anything; this answers for a valid key all the same."""
    token = _presented_key(request)
    key = get_access(request).store.verify_key(token) if token else None
    if key is None:
        raise HTTPException(
            401,
            "send the API key whose SigV4 credentials you want: Authorization: Bearer idx_...",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return JSONResponse(
        {
            "AccessKeyId": key.id,
            "SecretAccessKey": sigv4.derived_secret(_state(request).secret, key.id),
        },
        headers={"Cache-Control": "no-store"},
    )
