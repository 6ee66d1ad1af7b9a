"""Routes: the OpenAPI pages (`/docs`: Swagger UI, `/redoc`: ReDoc) served from the package.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so on a machine without internet they
are blank. The same files ship in the `fastapi-offline` package (Swagger UI 5, which reads the
OpenAPI 3.1 that FastAPI writes, and ReDoc 2); only these routes of ours serve them, with a
Content-Security-Policy that lets the pages reach this server and nothing else.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse

router = APIRouter(include_in_schema=False)

ASSETS_URL = "/docs/assets"
_TYPES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
}
# FastAPI's pages start Swagger UI / ReDoc with an inline script; ReDoc builds its search
# worker from a blob. Everything else comes from this server only.
_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)
_HEADERS = {"Content-Security-Policy": _CSP, "Cache-Control": "no-cache"}


@lru_cache(maxsize=1)
def assets_dir() -> Path:
    """Where the installed package keeps the Swagger UI and ReDoc files."""
    return Path(str(files("fastapi_offline") / "static"))


def _openapi_url(request: Request) -> str:
    return f"{request.scope.get('root_path', '')}{request.app.openapi_url}"


def _asset_url(request: Request, name: str) -> str:
    return f"{request.scope.get('root_path', '')}{ASSETS_URL}/{name}"


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    page = get_swagger_ui_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} API",
        oauth2_redirect_url="/docs/oauth2-redirect",
        swagger_js_url=_asset_url(request, "swagger-ui-bundle.js"),
        swagger_css_url=_asset_url(request, "swagger-ui.css"),
        swagger_favicon_url="/favicon.ico",
        # the validator badge would send the schema to validator.swagger.io
        swagger_ui_parameters={"validatorUrl": None},
    )
    page.headers.update(_HEADERS)
    return page


@router.get("/docs/oauth2-redirect")
def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    page = get_redoc_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} API",
        redoc_js_url=_asset_url(request, "redoc.standalone.js"),
        redoc_favicon_url="/favicon.ico",
        with_google_fonts=False,
    )
    page.headers.update(_HEADERS)
    return page


@router.get(ASSETS_URL + "/{name}")
def docs_asset(name: str) -> FileResponse:
    """One of the three files, by name (nothing else in the package is reachable)."""
    if name not in _TYPES:
        raise HTTPException(404, f"no docs asset {name!r}")
    path = assets_dir() / name
    if not path.is_file():  # a broken install: say which package to reinstall
        raise HTTPException(500, f"{name} is missing: reinstall the fastapi-offline package")
    return FileResponse(
        path, media_type=_TYPES[name], headers={"Cache-Control": "public, max-age=86400"}
    )
