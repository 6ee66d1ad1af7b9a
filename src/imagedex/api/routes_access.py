"""Routes: login and sessions, API keys, users, signed image links."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from imagedex.access.roles import AccessError
from imagedex.access.signing import image_path
from imagedex.api.deps import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    AccessDep,
    AdminDep,
    ServicesDep,
    ViewerDep,
    check_same_origin,
    client_ip,
    current_session,
    optional_principal,
    retry_after,
)

router = APIRouter()
RoleName = Literal["viewer", "editor", "admin"]
MAX_LINK_TTL = 30 * 24 * 3600.0

_LOGIN_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            media: {
                "schema": {
                    "type": "object",
                    "required": ["name", "password"],
                    "properties": {"name": {"type": "string"}, "password": {"type": "string"}},
                }
            }
            for media in ("application/json", "application/x-www-form-urlencoded")
        },
    }
}


class NewKey(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="what will use the key")
    role: RoleName


class NewUser(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    role: RoleName
    password: str = Field(min_length=1, max_length=1024)


async def _credentials(request: Request) -> tuple[str, str]:
    """name and password from a JSON body or an HTML form."""
    try:
        if request.headers.get("content-type", "").startswith("application/json"):
            body: Any = await request.json()
        else:
            body = await request.form()
    except Exception as exc:  # malformed JSON or form data: the caller's mistake, not ours
        raise HTTPException(400, "send name and password as JSON or as a form") from exc
    name = body.get("name") if hasattr(body, "get") else None
    password = body.get("password") if hasattr(body, "get") else None
    if not isinstance(name, str) or not isinstance(password, str) or not name or not password:
        raise HTTPException(400, "send name and password as JSON or as a form")
    return name, password


@router.post("/api/login", tags=["access"], openapi_extra=_LOGIN_BODY)
async def login(request: Request, response: Response, access: AccessDep) -> dict[str, Any]:
    """Log in with a name and password: sets the session cookie (HttpOnly) and the CSRF cookie,
    whose value unsafe requests must echo in the X-CSRF-Token header."""
    check_same_origin(request)
    # Every attempt takes a slot before the password check, so parallel guesses cannot race past
    # the limit; a successful login gives its slot back.
    address = client_ip(request)
    wait = access.login_limiter.hit(address)
    if wait is not None:
        limit = access.login_limiter.limit
        raise retry_after(wait, f"too many login attempts: at most {limit} a minute")
    name, password = await _credentials(request)
    user = await run_in_threadpool(access.store.authenticate, name, password)
    if user is None:
        raise HTTPException(401, "wrong name or password")
    access.login_limiter.refund(address)
    ttl = access.settings.session_ttl
    session = await run_in_threadpool(access.store.create_session, user, ttl)
    # behind a TLS proxy uvicorn may see plain http; public_url says how users really connect
    secure = request.url.scheme == "https" or access.settings.public_url.startswith("https:")
    for cookie, value, http_only in (
        (SESSION_COOKIE, session.token, True),
        (CSRF_COOKIE, session.csrf_token, False),  # the web app reads it to fill the header
    ):
        response.set_cookie(
            cookie,
            value,
            max_age=int(ttl),
            path="/",
            httponly=http_only,
            samesite="lax",
            secure=secure,
        )
    return {"name": user.name, "role": user.role, "csrf_token": session.csrf_token}


@router.post("/api/logout", tags=["access"])
def logout(
    request: Request, response: Response, who: ViewerDep, access: AccessDep
) -> dict[str, Any]:
    """End this browser session (API keys stay valid: revoke them instead)."""
    session = current_session(request)
    if session is not None:
        access.store.end_session(session.token)
    for cookie in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(cookie, path="/")
    return {"logged_out": session is not None, "name": who.name}


@router.get("/api/session", tags=["access"])
def session_info(request: Request, access: AccessDep) -> dict[str, Any]:
    """Who am I: open to everyone, so the web app can decide whether to show the login page."""
    who = optional_principal(request)
    session = current_session(request)
    return {
        "authenticated": who is not None,
        "name": who.name if who else None,
        "role": who.role if who else None,
        "via": who.via if who else None,
        "auth_required": access.required,
        "csrf_token": session.csrf_token if session else None,
    }


@router.get("/api/keys", tags=["access"])
def list_keys(who: AdminDep, access: AccessDep) -> dict[str, Any]:
    return {"keys": [asdict(key) for key in access.store.api_keys()]}


@router.post("/api/keys", tags=["access"], status_code=201)
def create_key(who: AdminDep, access: AccessDep, new: NewKey) -> dict[str, Any]:
    """A new API key; `key` is shown in this answer only (the server keeps a digest)."""
    try:
        key, secret = access.store.create_key(new.name, new.role)
    except AccessError as exc:
        raise HTTPException(400, str(exc)) from exc
    return {**asdict(key), "key": secret}


@router.delete("/api/keys/{key_id}", tags=["access"])
def revoke_key(who: AdminDep, access: AccessDep, key_id: str) -> dict[str, Any]:
    if access.store.key(key_id) is None:
        raise HTTPException(404, f"no API key with id {key_id!r}")
    try:
        return asdict(access.store.revoke_key(key_id))
    except AccessError as exc:
        raise HTTPException(409, str(exc)) from exc


@router.get("/api/users", tags=["access"])
def list_users(who: AdminDep, access: AccessDep) -> dict[str, Any]:
    return {"users": [asdict(user) for user in access.store.users()]}


@router.post("/api/users", tags=["access"], status_code=201)
def add_user(who: AdminDep, access: AccessDep, new: NewUser) -> dict[str, Any]:
    if access.store.user(new.name) is not None:
        raise HTTPException(409, f"a user named {new.name!r} already exists")
    try:
        return asdict(access.store.add_user(new.name, new.role, new.password))
    except AccessError as exc:
        raise HTTPException(400, str(exc)) from exc


@router.get("/api/images/{doc_id}/link", tags=["images"])
def image_link(
    services: ServicesDep,
    who: ViewerDep,
    request: Request,
    access: AccessDep,
    doc_id: str,
    ttl: Annotated[float | None, Query(gt=0, le=MAX_LINK_TTL, description="seconds")] = None,
    kind: Annotated[Literal["content", "thumbnail"], Query()] = "content",
) -> dict[str, Any]:
    """A link to the image that works without logging in until it expires (for e-mail, chat)."""
    if services.index.get(doc_id) is None:
        raise HTTPException(404, f"no indexed image with id {doc_id!r}")
    lifetime = ttl or access.settings.link_ttl
    path = access.signer.sign_path(image_path(doc_id, kind), lifetime)
    base = access.settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")
    expires = int(parse_qs(urlsplit(path).query)["expires"][0])
    return {
        "url": base + path,
        "path": path,
        "expires_at": datetime.fromtimestamp(expires, UTC).isoformat().replace("+00:00", "Z"),
    }
