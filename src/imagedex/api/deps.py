"""What every route depends on: the deployment's services and who is calling with which role.

A caller is identified by, in this order: a signed image link (content and thumbnail only), an
API key (`Authorization: Bearer idx_...` or `X-API-Key`), or the browser session cookie. Cookie
callers must echo their CSRF token in `X-CSRF-Token` on unsafe methods. See docs/security.md.
"""

from __future__ import annotations

import hmac
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPBearer

from imagedex.access.control import AccessControl
from imagedex.access.roles import ROLES, role_allows
from imagedex.access.signing import image_path
from imagedex.access.store import KEY_PREFIX, Session
from imagedex.services import Services

__all__ = ["ROLES", "Principal", "require_role"]

SESSION_COOKIE = "imagedex_session"
CSRF_COOKIE = "imagedex_csrf"
CSRF_HEADER = "X-CSRF-Token"
API_KEY_HEADER = "X-API-Key"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_SIGNED_PATH = re.compile(r"^/api/images/([^/]+)/(content|thumbnail)$")
_build_lock = threading.Lock()

# Declared for the OpenAPI document (the "Authorize" button in /docs); the values are read from
# the request itself so that routes without these parameters resolve callers the same way.
_bearer_doc = HTTPBearer(auto_error=False, description="an API key: `Bearer idx_<id>_<secret>`")
_api_key_doc = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="an API key")
_cookie_doc = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="after /api/login")


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    via: str  # "key" (API key), "session" (browser login), "link" (signed link), "local" (auth off)


LOCAL = Principal(name="local", role="admin", via="local")
_UNKNOWN = object()


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_access(request: Request) -> AccessControl:
    """The app's access control, built on first use (tests may set `app.state.access`)."""
    access: AccessControl | None = getattr(request.app.state, "access", None)
    if access is None:
        with _build_lock:
            access = getattr(request.app.state, "access", None)
            if access is None:
                access = AccessControl(get_services(request).settings)
                request.app.state.access = access
    return access


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def _presented_key(request: Request) -> str | None:
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if authorization and scheme.lower() == "bearer":
        token = token.strip()
        if not token.startswith(KEY_PREFIX):
            raise _unauthorized("the bearer token is not an imagedex API key (idx_...)")
        return token
    return request.headers.get(API_KEY_HEADER) or None


def _signed_link(request: Request, access: AccessControl) -> Principal | None:
    params = request.query_params
    if "signature" not in params or request.method not in ("GET", "HEAD"):
        return None
    match = _SIGNED_PATH.match(request.url.path)
    if match is None:
        return None
    path = image_path(match[1], match[2])  # the quoted form that was signed
    if access.signer.verify(path, params.get("expires", ""), params["signature"]):
        return Principal(name="signed link", role="viewer", via="link")
    return None


def identify(request: Request) -> Principal | None:
    """Who is calling: a Principal, None when no credentials came along, 401 for bad ones."""
    cached: Any = getattr(request.state, "principal", _UNKNOWN)
    if cached is not _UNKNOWN:
        known: Principal | None = cached
        return known
    access = get_access(request)
    principal = LOCAL if not access.required else _identify(request, access)
    request.state.principal = principal
    return principal


def _identify(request: Request, access: AccessControl) -> Principal | None:
    link = _signed_link(request, access)
    if link is not None:
        return link
    token = _presented_key(request)
    if token is not None:
        key = access.store.verify_key(token)
        if key is None:
            raise _unauthorized("the API key is unknown or revoked")
        return Principal(name=key.name, role=key.role, via="key")
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        session = access.store.session(cookie)
        if session is None:
            raise _unauthorized("the session has expired or ended: log in again")
        request.state.session = session
        return Principal(name=session.user.name, role=session.user.role, via="session")
    if "signature" in request.query_params and _SIGNED_PATH.match(request.url.path):
        raise _unauthorized("the signed link has expired or its signature is wrong")
    return None


def current_session(request: Request) -> Session | None:
    """The browser session behind this request, if it came with a valid session cookie."""
    session: Session | None = getattr(request.state, "session", None)
    return session


def _foreign_origin(request: Request) -> bool:
    """An `Origin` header naming another site than the one addressed (`Host`) or `public_url`
    (behind a proxy that rewrites Host). The scheme is not compared: a TLS proxy in front turns
    https into http. `null` (sandboxed pages, file:// and data: URLs) is foreign."""
    origin = request.headers.get("origin")
    if origin is None:
        return False
    try:
        netloc = urlsplit(origin).netloc.lower()
    except ValueError:
        return True
    own = {request.headers.get("host", "").lower()}
    public_url = get_services(request).settings.public_url
    if public_url:
        own.add(urlsplit(public_url).netloc.lower())
    return not netloc or netloc not in own


def check_same_origin(request: Request) -> None:
    """Refuse unsafe methods that another site made a browser send, so a web page elsewhere cannot
    drive a logged-in browser (or an auth-off local server): browsers label them with
    `Sec-Fetch-Site` and with `Origin` (older browsers send only the latter)."""
    if request.method not in UNSAFE_METHODS:
        return
    if request.headers.get("sec-fetch-site") in ("cross-site", "same-site"):
        raise HTTPException(403, "cross-site requests may not change anything here")
    if _foreign_origin(request):
        raise HTTPException(
            403,
            f"requests from {request.headers['origin']} may not change anything here "
            "(set public_url if people reach this server under another name)",
        )


def _check_csrf(request: Request, principal: Principal) -> None:
    if principal.via not in ("session", "local"):
        return
    check_same_origin(request)
    session = current_session(request)
    if principal.via == "session" and request.method in UNSAFE_METHODS and session is not None:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
            raise HTTPException(
                403,
                f"missing or wrong {CSRF_HEADER} header: send the value of the "
                f"{CSRF_COOKIE} cookie (also in GET /api/session)",
            )


def require_role(role: str) -> Callable[..., Principal]:
    """A dependency that lets the request through only for `role` or better."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")

    def dependency(
        request: Request,
        _bearer: Annotated[Any, Security(_bearer_doc)] = None,
        _api_key: Annotated[Any, Security(_api_key_doc)] = None,
        _cookie: Annotated[Any, Security(_cookie_doc)] = None,
    ) -> Principal:
        principal = identify(request)
        if principal is None:
            raise _unauthorized(
                "authentication required: log in (POST /api/login) or send an API key "
                "(Authorization: Bearer idx_...)"
            )
        _check_csrf(request, principal)
        if not role_allows(principal.role, role):
            raise HTTPException(
                403, f"this needs the {role} role; {principal.name} has the {principal.role} role"
            )
        return principal

    return dependency


def optional_principal(request: Request) -> Principal | None:
    """The caller if valid credentials came along, else None (never raises)."""
    try:
        return identify(request)
    except HTTPException:
        return None


def retry_after(wait: float, detail: str) -> HTTPException:
    seconds = max(1, math.ceil(wait))
    return HTTPException(
        429, f"{detail}; retry in {seconds} s", headers={"Retry-After": str(seconds)}
    )


ServicesDep = Annotated[Services, Depends(get_services)]
AccessDep = Annotated[AccessControl, Depends(get_access)]
ViewerDep = Annotated[Principal, Depends(require_role("viewer"))]
EditorDep = Annotated[Principal, Depends(require_role("editor"))]
AdminDep = Annotated[Principal, Depends(require_role("admin"))]


def limit_uploads(request: Request, who: EditorDep) -> Principal:
    """An editor, within `uploads_per_minute` (per API key or user; per client address when
    authentication is off)."""
    access = get_access(request)
    caller = f"{who.via}:{who.name}" if who.via in ("key", "session") else client_ip(request)
    wait = access.upload_limiter.hit(caller)
    if wait is not None:
        raise retry_after(wait, f"too many uploads: at most {access.upload_limiter.limit} a minute")
    return who


UploaderDep = Annotated[Principal, Depends(limit_uploads)]
