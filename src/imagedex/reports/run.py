"""Run a report: gather its data, render each format, queue one message per recipient."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from imagedex.errors import ConfigError
from imagedex.notify import Attachment, Message, Outbox
from imagedex.reports import times
from imagedex.reports.data import ReportData, gather
from imagedex.reports.model import FORMATS, Report, ReportRun
from imagedex.reports.store import ReportStore
from imagedex.services import Services

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def render(data: ReportData, fmt: str) -> bytes:
    if fmt == "pdf":
        from imagedex.reports.render_pdf import render_pdf

        return render_pdf(data)
    if fmt == "xlsx":
        from imagedex.reports.render_xlsx import render_xlsx

        return render_xlsx(data)
    if fmt == "png":
        from imagedex.reports.render_charts import charts_png

        return charts_png(data)
    if fmt == "csv":
        from imagedex.reports.render_csv import render_csv

        return render_csv(data)
    raise ConfigError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")


def preview(services: Services, report: Report, fmt: str, clock: Clock | None = None) -> bytes:
    """One format of the report as it would be sent now (nothing is queued or recorded)."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    moment = clock() if clock else datetime.now(UTC)
    return render(gather(services, report, moment, thumbnails=fmt == "pdf"), fmt)


def file_name(report: Report, fmt: str, moment: datetime) -> str:
    """`weekly-dogs-20260302-0800.pdf`: the run's time in the report's zone, like its subject."""
    return f"{report.name}-{times.stamp(moment, report.timezone)}.{FORMATS[fmt][1]}"


def report_link(services: Services, report: Report) -> str:
    base = services.settings.public_url.rstrip("/") or (
        f"http://{services.settings.host}:{services.settings.port}"
    )
    return f"{base}/api/reports/{report.name}/preview?format={report.formats[0]}"


def _summary(data: ReportData, report: Report) -> str:
    lines = [
        data.title,
        "",
        f"Query: {data.query or '(every image)'}",
        f"Period: {data.period}",
        f"Generated: {data.generated}",
        f"Matching images: {data.total}",
        f"Unsafe images: {data.charts.unsafe}",
    ]
    if data.charts.labels:
        lines.append("Top labels:")
        lines.extend(f"  {label}: {count}" for label, count in data.charts.labels[:5])
    lines += [
        "",
        f"Attached: {', '.join(file_name(report, f, data.generated_at) for f in report.formats)}",
    ]
    return "\n".join(lines)


def build_message(services: Services, report: Report, data: ReportData) -> Message:
    local = times.local(data.generated_at, report.timezone)
    attachments = [
        Attachment(file_name(report, fmt, data.generated_at), FORMATS[fmt][0], render(data, fmt))
        for fmt in report.formats
    ]
    return Message(
        subject=f"imagedex report: {data.title} ({local:%Y-%m-%d})",
        text=_summary(data, report),
        attachments=attachments,
        link=report_link(services, report),
        payload={
            "report": report.name,
            "title": data.title,
            "query": data.query,
            "window": data.window,
            "date_from": data.date_from,  # UTC, for scripts; `period` is what people read
            "date_to": data.date_to,
            "timezone": report.timezone,
            "period": data.period,
            "scheduled_for": data.generated_at.astimezone(UTC).isoformat(),
            "total": data.total,
            "top_labels": [{"label": lb, "count": n} for lb, n in data.charts.labels[:10]],
            "unsafe": data.charts.unsafe,
            "formats": list(report.formats),
        },
    )


def run_report(
    services: Services,
    report: Report,
    scheduled_for: datetime | None = None,
    clock: Clock | None = None,
) -> ReportRun:
    """Render `report` for the window ending at `scheduled_for` (default now) and queue one
    delivery per recipient; the run (with its delivery ids and any error) goes to the history.

    A recipient the outbox refuses is recorded and skipped (status "partial"); the others still
    get their delivery. A failure to gather or render marks the run "failed" and is re-raised.
    """
    now = clock() if clock else datetime.now(UTC)
    moment = scheduled_for or now
    store = ReportStore.open(services.settings, clock)
    outbox = Outbox.open(services.settings, clock)
    run = store.start_run(report.name, moment)
    try:
        data = gather(services, report, moment, thumbnails="pdf" in report.formats)
        run.total, run.rows = data.total, len(data.rows)
        message = build_message(services, report, data)
        errors = []
        for recipient in report.recipients:
            try:
                run.deliveries.append(outbox.enqueue(recipient, message, f"report:{report.name}"))
            except Exception as exc:  # one bad recipient never blocks the others
                log.warning("report %s: recipient not queued: %s", report.name, exc)
                errors.append(str(exc))
        run.error = "; ".join(errors)
        run.status = "partial" if errors else "ok"
    except Exception as exc:
        run.status, run.error = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        store.finish_run(run)
        store.close()
        outbox.close()
    return run
