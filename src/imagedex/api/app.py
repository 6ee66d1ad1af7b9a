"""FastAPI application: health and queue state; the routers of every other route."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response

from imagedex import __version__
from imagedex.access.policy import auth_required, host_allowed
from imagedex.api import (
    docs_pages,
    pages,
    routes_access,
    routes_alerts,
    routes_custom,
    routes_dashboard,
    routes_deliveries,
    routes_images,
    routes_notifications,
    routes_people,
    routes_reports,
    routes_search,
    routes_upload,
)
from imagedex.api import rekognition as routes_rekognition
from imagedex.api.deps import optional_principal, require_role
from imagedex.api.forwarded import TrustedProxies
from imagedex.api.headers import SecurityHeaders
from imagedex.api.limits import BodyLimit
from imagedex.errors import ImagedexError, QueryTooLargeError
from imagedex.services import Services


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="imagedex",
        version=__version__,
        description="Search images by what they show.",
        docs_url=None,  # docs_pages serves /docs and /redoc from the package, not a CDN
        redoc_url=None,
    )
    settings = services.settings
    app.state.services = services
    viewer = [Depends(require_role("viewer"))]
    if not auth_required(settings):

        @app.middleware("http")
        async def refuse_rebound_hosts(request: Request, call_next: Any) -> Response:
            if host_allowed(request.headers.get("host", ""), settings):
                response: Response = await call_next(request)
                return response
            return JSONResponse(
                {"detail": "unknown Host; add it to the allowed_hosts setting or turn auth on"},
                status_code=421,
            )

    @app.get("/healthz", tags=["ops"])
    def healthz(request: Request) -> dict[str, Any]:
        if optional_principal(request) is None:  # counts only for callers who may see them
            return {"status": "ok", "version": __version__}
        stats = services.queue.stats()
        return {
            "status": "ok",
            "version": __version__,
            "documents": services.index.count(),
            "queue": {"visible": stats.visible, "in_flight": stats.in_flight, "dead": stats.dead},
        }

    @app.get("/api/queue", tags=["ops"], dependencies=viewer)
    def queue_state(limit: Annotated[int, Query(ge=0, le=1000)] = 20) -> dict[str, Any]:
        stats = services.queue.stats()
        return {
            "visible": stats.visible,
            "in_flight": stats.in_flight,
            "dead": stats.dead,
            "dead_letters": [
                {"id": d.id, "error": d.error, "receive_count": d.receive_count, "body": d.body}
                for d in services.queue.dead_letters(limit)
            ],
        }

    for module in (
        routes_upload,
        routes_notifications,
        routes_images,
        routes_search,
        routes_access,
        routes_dashboard,
        routes_reports,
        routes_alerts,
        routes_deliveries,
        routes_people,
        routes_custom,
        routes_rekognition,
        docs_pages,
    ):
        app.include_router(module.router)
    app.include_router(pages.router)  # last: the web app's catch-all page routes

    # added last = runs first: the real client, then headers on every answer (413s included),
    # then body limits before any route, authentication or Host check reads a byte
    app.add_middleware(BodyLimit, settings=settings)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(TrustedProxies, trusted_proxies=settings.trusted_proxies)

    @app.exception_handler(ImagedexError)
    async def imagedex_error(_request: object, exc: ImagedexError) -> Response:
        # a query the index cannot run is the caller's to change; anything else is an outage
        status = 400 if isinstance(exc, QueryTooLargeError) else 503
        return JSONResponse({"detail": str(exc)}, status_code=status)

    return app
