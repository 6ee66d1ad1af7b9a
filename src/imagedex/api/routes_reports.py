"""Routes: reports. Reading (list, show, preview, history): viewer. Defining, changing, deleting
and running (which sends mail and posts to hooks): admin."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from imagedex.api.deps import AdminDep, ServicesDep, ViewerDep
from imagedex.errors import ConfigError
from imagedex.reports.model import FORMATS, Report
from imagedex.reports.store import ReportNotFoundError

router = APIRouter()
_FORMAT_PATTERN = "^(" + "|".join(FORMATS) + ")$"


class ReportBody(BaseModel):
    """A report definition as the API takes it (the name is in the URL)."""

    title: str = Field(default="", max_length=200)
    query: str = Field(default="", max_length=1000, description="search syntax; empty: all")
    source: str = Field(default="search", description="search | dashboard")
    formats: list[str] = Field(default=["pdf"], min_length=1, max_length=4)
    schedule: str = Field(default="", max_length=100, description="empty: on demand only")
    timezone: str = Field(default="", max_length=64, description="empty: the server's setting")
    window: str = Field(default="all", max_length=16, description="24h, 7d, 2w, 30m or all")
    recipients: list[str] = Field(default=[], max_length=50)
    max_rows: int = 100
    enabled: bool = True


def _report_json(settings: Any, report: Report) -> dict[str, Any]:
    from imagedex.reports.jobs import next_run

    data = report.redacted()
    data["next_run"] = next_run(settings, report.name)
    return data


def _fields(services: Any, body: ReportBody) -> dict[str, Any]:
    values = body.model_dump()
    values["formats"] = tuple(values["formats"])
    values["recipients"] = tuple(values["recipients"])
    values["timezone"] = values["timezone"] or services.settings.timezone
    return values


def _error(exc: ConfigError) -> HTTPException:
    if isinstance(exc, ReportNotFoundError):
        return HTTPException(404, str(exc))
    return HTTPException(409 if "already exists" in str(exc) else 400, str(exc))


def _get(services: Any, name: str) -> Report:
    from imagedex.reports.manage import get_report

    try:
        return get_report(services.settings, name)
    except ConfigError as exc:
        raise _error(exc) from exc


@router.get("/api/reports", tags=["reports"])
def list_reports(services: ServicesDep, _who: ViewerDep) -> dict[str, Any]:
    from imagedex.reports.manage import list_reports as all_reports

    reports = all_reports(services.settings)
    return {"reports": [_report_json(services.settings, r) for r in reports]}


@router.get("/api/reports/{name}", tags=["reports"])
def get_report(services: ServicesDep, _who: ViewerDep, name: str) -> dict[str, Any]:
    return _report_json(services.settings, _get(services, name))


@router.post("/api/reports/{name}", status_code=201, tags=["reports"])
def create_report(
    services: ServicesDep, _who: AdminDep, name: str, body: ReportBody
) -> dict[str, Any]:
    from imagedex.reports.manage import create_report as create

    try:
        saved = create(services.settings, Report(name=name, **_fields(services, body)))
    except ConfigError as exc:
        raise _error(exc) from exc
    return _report_json(services.settings, saved)


@router.put("/api/reports/{name}", tags=["reports"])
def replace_report(
    services: ServicesDep, _who: AdminDep, name: str, body: ReportBody
) -> dict[str, Any]:
    """Replace the whole definition (fields left out take their defaults)."""
    from imagedex.reports.manage import update_report

    try:
        saved = update_report(services.settings, name, **_fields(services, body))
    except ConfigError as exc:
        raise _error(exc) from exc
    return _report_json(services.settings, saved)


@router.delete("/api/reports/{name}", tags=["reports"])
def delete_report(services: ServicesDep, _who: AdminDep, name: str) -> dict[str, Any]:
    from imagedex.reports.manage import delete_report as delete

    try:
        delete(services.settings, name)
    except ConfigError as exc:
        raise _error(exc) from exc
    return {"deleted": name}


@router.post("/api/reports/{name}/run", tags=["reports"])
def run_report(services: ServicesDep, _who: AdminDep, name: str) -> dict[str, Any]:
    """Run now: render and queue one delivery per recipient (the outbox sends them)."""
    from imagedex.reports.history import delivery_status
    from imagedex.reports.run import run_report as run

    report = _get(services, name)
    result = run(services, report)
    return {
        **result.to_dict(),
        "delivery_status": delivery_status(services.settings, result.deliveries),
    }


@router.get(
    "/api/reports/{name}/preview",
    tags=["reports"],
    response_class=Response,
    responses={200: {"content": {ctype: {} for ctype, _ in FORMATS.values()}}},
)
def preview_report(
    services: ServicesDep,
    _who: ViewerDep,
    name: str,
    format: Annotated[str | None, Query(pattern=_FORMAT_PATTERN)] = None,
    download: bool = False,
) -> Response:
    """The report rendered now in one format (default: its first); nothing is sent."""
    from imagedex.reports.run import file_name, preview

    report = _get(services, name)
    fmt = format or report.formats[0]
    data = preview(services, report, fmt)
    disposition = "attachment" if download else "inline"
    filename = file_name(report, fmt, datetime.now(UTC))
    return Response(
        data,
        media_type=FORMATS[fmt][0],
        headers={
            "Content-Disposition": f'{disposition}; filename="{filename}"',
            "Cache-Control": "private, no-store",
        },
    )


@router.get("/api/reports/{name}/history", tags=["reports"])
def report_history(
    services: ServicesDep,
    who: ViewerDep,
    name: str,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    from imagedex.reports.history import run_history

    with_errors = who.role == "admin"  # a receiver's reply may quote an internal service
    try:
        return {"runs": run_history(services.settings, name, limit, with_errors)}
    except ConfigError as exc:
        raise _error(exc) from exc
