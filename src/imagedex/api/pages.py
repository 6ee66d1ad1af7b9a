"""Routes: the browser app's pages (one HTML shell, history-API routing) and its static assets.

Pages are public HTML: the data behind them is protected by the API, and the app asks
`/api/session` first. Assets are served under a content-derived version prefix
(`/static/v-<digest>/app.js`) so they can be cached for a year; the ES modules import each other
relatively, so every import stays under the same prefix and a new release changes every URL.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

router = APIRouter(include_in_schema=False)

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
}
_IMMUTABLE = "public, max-age=31536000, immutable"
_REVALIDATE = "no-cache"
# Styles set through the CSSOM (element.style) are allowed by 'self'; no inline <style> or
# style="" attributes are used. img-src allows any origin: S3 presigned links redirect there.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src * data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": _CSP,
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


@dataclass(frozen=True)
class Asset:
    data: bytes
    content_type: str
    etag: str


@lru_cache(maxsize=256)
def _load(relative: str) -> Asset | None:
    path = (WEB_DIR / relative).resolve()
    if not path.is_relative_to(WEB_DIR) or not path.is_file():
        return None
    data = path.read_bytes()
    content_type = _TYPES.get(path.suffix) or (
        mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    )
    return Asset(data, content_type, '"' + hashlib.sha256(data).hexdigest()[:32] + '"')


@lru_cache(maxsize=1)
def asset_version() -> str:
    """A digest of every asset: changes whenever any file of the web app changes."""
    digest = hashlib.sha256()
    for path in sorted(WEB_DIR.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(WEB_DIR).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return "v-" + digest.hexdigest()[:16]


def _safe_relative(path: str) -> str | None:
    parts = PurePosixPath(path).parts
    if not parts or any(p in ("..", ".") or p.startswith(".") for p in parts) or "\\" in path:
        return None
    return "/".join(parts)


def _respond(request: Request, asset: Asset, cache: str, extra: dict[str, str]) -> Response:
    headers = {"ETag": asset.etag, "Cache-Control": cache, "X-Content-Type-Options": "nosniff"}
    headers.update(extra)
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(asset.data, media_type=asset.content_type, headers=headers)


@lru_cache(maxsize=1)
def _shell() -> Asset:
    template = _load("index.html")
    if template is None:
        raise RuntimeError(f"the web app is missing from the package ({WEB_DIR})")
    data = template.data.replace(b"{{STATIC}}", f"/static/{asset_version()}".encode())
    return Asset(data, template.content_type, '"' + hashlib.sha256(data).hexdigest()[:32] + '"')


#: The app's pages: each answers with the same shell, which routes on the client side.
PAGES = (
    "/",
    "/search",
    "/images/{doc_id}",
    "/people",
    "/dashboard",
    "/reports",
    "/alerts",
    "/upload",
    "/login",
)


def page(request: Request) -> Response:
    """The app's HTML shell (public: it holds no data; the API it calls enforces the roles)."""
    return _respond(request, _shell(), _REVALIDATE, _PAGE_HEADERS)


for _path in PAGES:
    router.add_api_route(_path, page, methods=["GET"], response_model=None)


@router.get("/favicon.ico", response_model=None)
def favicon(request: Request) -> Response:
    asset = _load("icon.svg")
    if asset is None:
        raise HTTPException(404, "no icon")
    return _respond(request, asset, "public, max-age=86400", {})


@router.get("/static/{path:path}", response_model=None)
def static_asset(request: Request, path: str) -> Response:
    version, _, rest = path.partition("/")
    prefixed = version.startswith("v-") and bool(rest)  # an older page may ask an old version
    relative = _safe_relative(rest if prefixed else path)
    asset = _load(relative) if relative and relative != "index.html" else None
    if asset is None:
        raise HTTPException(404, f"no asset {path!r}")
    current = prefixed and version == asset_version()
    return _respond(request, asset, _IMMUTABLE if current else _REVALIDATE, {})
