"""Routes: thumbnails, the dashboard's data and each panel as CSV."""

from __future__ import annotations

import csv
import dataclasses
import io
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, Response

from imagedex.api.deps import ServicesDep, ViewerDep
from imagedex.dashboard import INTERVALS, PANELS, dashboard_data, panel_rows
from imagedex.documents import SearchQuery
from imagedex.errors import ImageDecodeError, InvalidKeyError, ObjectNotFoundError
from imagedex.ingest.pixel_budget import DecodeBusyError
from imagedex.reports.csv_cells import spreadsheet_safe
from imagedex.services import Services
from imagedex.thumbnails import ThumbnailSizeError, thumbnail

router = APIRouter()

# Behind authentication, so "private": a shared proxy must not hand one user's thumbnails to
# another. A versioned URL names one object version forever; an unversioned one may change.
CACHE_VERSIONED = "private, max-age=31536000, immutable"
CACHE_UNVERSIONED = "private, max-age=60"
_INTERVAL_PATTERN = "^(" + "|".join(INTERVALS) + ")$"


def dashboard_query(
    q: Annotated[str | None, Query(max_length=500, description="query syntax")] = None,
    label: Annotated[list[str] | None, Query(description="label (repeatable)")] = None,
    min_confidence: Annotated[float, Query(ge=0, le=100)] = 0.0,
    date_from: Annotated[str | None, Query(max_length=40, description="ISO-8601")] = None,
    date_to: Annotated[str | None, Query(max_length=40, description="ISO-8601")] = None,
    moderation: Annotated[str, Query(pattern="^(|safe|unsafe)$")] = "",
) -> SearchQuery:
    """The dashboard's filters as a query: explicit parameters first, then `q` refines them."""
    try:
        base = SearchQuery(
            labels=tuple(label or ()),
            min_confidence=min_confidence,
            moderation=moderation,
            date_from=date_from or None,
            date_to=date_to or None,
        )
    except ValueError as exc:  # says which date is malformed and how to write it
        raise HTTPException(422, str(exc)) from exc
    if not q or not q.strip():
        return base
    from imagedex.index.query_syntax import parse_query

    try:
        parsed = parse_query(q, base)
    except ValueError as exc:  # QuerySyntaxError says what to change
        raise HTTPException(422, str(exc)) from exc
    return dataclasses.replace(parsed, limit=1, offset=0)


DashboardQuery = Annotated[SearchQuery, Depends(dashboard_query)]


@router.get(
    "/api/images/{doc_id}/thumbnail", tags=["images"], response_model=None, name="thumbnail"
)
def get_thumbnail(
    services: ServicesDep,
    _who: ViewerDep,
    request: Request,
    doc_id: str,
    size: Annotated[int | None, Query(ge=1, le=10_000, description="longest side")] = None,
    v: Annotated[str | None, Query(pattern="^[0-9a-f]{8}$", description="version")] = None,
) -> Response:
    try:
        path = thumbnail(services, doc_id, size or services.settings.thumbnail_size, version=v)
    except ThumbnailSizeError as exc:
        raise HTTPException(422, str(exc)) from exc
    except (ObjectNotFoundError, InvalidKeyError) as exc:
        raise HTTPException(404, str(exc)) from exc
    except ImageDecodeError as exc:
        raise HTTPException(422, f"cannot make a thumbnail: {exc}") from exc
    except DecodeBusyError as exc:
        retry = str(max(1, round(exc.retry_after)))
        raise HTTPException(503, str(exc), headers={"Retry-After": retry}) from exc
    etag = f'"{path.stem}"'
    versioned = v is not None and path.stem.endswith(f"-{v}")
    headers = {"ETag": etag, "Cache-Control": CACHE_VERSIONED if versioned else CACHE_UNVERSIONED}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type="image/jpeg", headers=headers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in candidates or etag in candidates


@router.get("/api/dashboard", tags=["dashboard"])
def dashboard(
    services: ServicesDep,
    _who: ViewerDep,
    query: DashboardQuery,
    interval: Annotated[str, Query(pattern=_INTERVAL_PATTERN)] = "day",
) -> dict[str, Any]:
    return _data(services, query, interval)


@router.get("/api/dashboard/{panel}.csv", tags=["dashboard"], response_model=None)
def dashboard_csv(
    services: ServicesDep,
    _who: ViewerDep,
    panel: str,
    query: DashboardQuery,
    interval: Annotated[str, Query(pattern=_INTERVAL_PATTERN)] = "day",
) -> Response:
    if panel not in PANELS:
        raise HTTPException(404, f"no panel {panel!r}; panels: {', '.join(PANELS)}")
    header, rows = panel_rows(_data(services, query, interval), panel)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([[spreadsheet_safe(value) for value in row] for row in rows])
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="imagedex-{panel}-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )


def _data(services: Services, query: SearchQuery, interval: str) -> dict[str, Any]:
    try:
        return dashboard_data(services, query, interval)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
