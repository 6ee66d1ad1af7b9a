"""`POST /rekognition`: Amazon Rekognition's JSON 1.1 protocol (the operation in `X-Amz-Target`,
the parameters as a JSON object), so an unmodified boto3 `rekognition` client with
`endpoint_url=http://HOST:PORT/rekognition` talks to imagedex; and
`GET /rekognition/credentials`, where an API key's holder gets the SigV4 secret to sign with.

Who may call: with authentication off (loopback), anyone, whatever the request is signed with,
as for the rest of the API; with it on, a request signed (SigV4) with an API key's id and its
derived secret (`sigv4.py`), or carrying the API key itself (`Authorization: Bearer idx_...`).
Any live key's role will do (the Detect operations change nothing). Calls per key (per client
address with authentication off) are limited to `uploads_per_minute`, like uploads, the other
requests that run the models; over it: ThrottlingException.
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
from imagedex.access.store import KEY_PREFIX, ApiKey
from imagedex.api.deps import check_same_origin, client_ip, get_access, get_services
from imagedex.api.rekognition import sigv4
from imagedex.api.rekognition.errors import RekognitionError, error_response, json_response
from imagedex.api.rekognition.images import RequestImage, load_image
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
#: Face collections come with people (issue 15); until then these are refused by name.
LATER = frozenset(
    {
        "CreateCollection",
        "DeleteCollection",
        "ListCollections",
        "DescribeCollection",
        "IndexFaces",
        "SearchFaces",
        "SearchFacesByImage",
        "ListFaces",
        "DeleteFaces",
    }
)
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
    """Per app: the analyzers, the rate limit, the deployment secret (read once)."""

    analyzers: Analyzers
    limiter: RateLimiter
    secret: bytes
    _keys: dict[str, Any] = field(default_factory=dict)


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


def _caller(request: Request, body: bytes, state: _State) -> str:
    """Who is calling, as the rate limit counts them; RekognitionError when they may not."""
    access = get_access(request)
    if not access.required:
        try:
            check_same_origin(request)  # a web page elsewhere may not drive a local server
        except HTTPException as exc:
            raise RekognitionError("AccessDeniedException", str(exc.detail)) from None
        return f"address:{client_ip(request)}"
    authorization = request.headers.get("authorization", "")
    if sigv4.is_sigv4(authorization):
        return f"key:{_signed_by(request, body, access, state).id}"
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
    return f"key:{key.id}"


def _operation(request: Request) -> str:
    target = request.headers.get("x-amz-target", "")
    name = target.removeprefix(TARGET_PREFIX)
    if not target.startswith(TARGET_PREFIX) or name in LATER or name not in OPERATIONS:
        later = " (face collections come with people, issue 15)" if name in LATER else ""
        raise RekognitionError(
            "UnknownOperationException",
            f"imagedex does not serve {target or 'a request without X-Amz-Target'}{later}; "
            f"it serves {', '.join(TARGET_PREFIX + n for n in OPERATIONS)}",
        )
    return name


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
    caller = _caller(request, body, state)
    wait = state.limiter.hit(caller)
    if wait is not None:
        raise RekognitionError(
            "ThrottlingException",
            f"more than {state.limiter.limit} calls a minute (setting uploads_per_minute)",
            wait,
        )
    params = _params(request, body)
    settings = get_services(request).settings
    image = load_image(params, get_services(request).store, settings.max_pixels)
    try:
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
