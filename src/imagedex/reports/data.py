"""What a report shows, gathered once per run from the index: counts, chart series and rows.

Renderers take a ReportData and return bytes, so they never touch the index themselves.
"""

from __future__ import annotations

import dataclasses
import io
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from imagedex.documents import ImageDocument, SearchQuery
from imagedex.reports import times
from imagedex.reports.model import Report, iso_utc, parse_window
from imagedex.services import Services

log = logging.getLogger(__name__)

THUMBNAIL_SIZE = 160
MAX_BUCKETS = 120  # more time buckets than this would make an unreadable chart
LABELS = 50  # label counts a report lists (the charts show the first ten)


@dataclass
class Charts:
    over_time: list[tuple[str, int]] = field(default_factory=list)  # (bucket start, count)
    labels: list[tuple[str, int]] = field(default_factory=list)  # top labels, most first
    confidence: list[tuple[int, int, int]] = field(default_factory=list)  # (low, high, count)
    safe: int = 0
    unsafe: int = 0
    moderation_labels: list[tuple[str, int]] = field(default_factory=list)
    interval: str = "day"
    total: int = 0  # matching images: what each label's share of images is a share of
    timezone: str = "UTC"  # the report's (time buckets themselves are UTC calendar units)


@dataclass
class ReportRow:
    id: str
    title: str
    key: str
    ingested_at: str
    labels: list[tuple[str, float]]  # best first
    description: str
    link: str


@dataclass
class ReportData:
    title: str
    query: str
    window: str
    generated_at: datetime
    date_from: str | None
    date_to: str | None
    total: int
    charts: Charts
    rows: list[ReportRow]
    thumbnails: dict[str, bytes] = field(default_factory=dict)  # row id -> JPEG (PDF only)
    ingest: dict[str, Any] | None = None  # the dashboard's ingest panel (dashboard reports)
    timezone: str = "UTC"  # the report's: every time a reader sees is shown in it

    @property
    def period(self) -> str:
        """`Mon 23 Feb 2026 08:00 CET to Mon 2 Mar 2026 08:00 CET`, or `all time`."""
        return times.period(self.date_from, self.date_to, self.timezone)

    @property
    def generated(self) -> str:
        return times.human(self.generated_at, self.timezone)

    @property
    def label_columns(self) -> int:
        return max((len(r.labels) for r in self.rows), default=0)


def report_query(report: Report, scheduled_for: datetime) -> SearchQuery:
    """The report's search, limited to its window ending at the scheduled time."""
    from imagedex.index.query_syntax import parse_query

    query = parse_query(report.query)
    window = parse_window(report.window)
    changes: dict[str, Any] = {"limit": report.max_rows}
    if not query.text:
        changes["sort"] = "newest"
    if window is not None:
        changes["date_from"] = iso_utc(scheduled_for - window)
        changes["date_to"] = iso_utc(scheduled_for)
    return dataclasses.replace(query, **changes)


def _interval_for(window: timedelta | None) -> str:
    if window is None:
        return "day"
    if window <= timedelta(hours=3):
        return "minute"
    if window <= timedelta(days=3):
        return "hour"
    if window <= timedelta(days=120):
        return "day"
    return "week"


def _charts_from_facets(facets: Any, interval: str) -> Charts:
    return Charts(
        over_time=[(b.start, b.count) for b in facets.over_time],
        labels=[(c.label, c.count) for c in facets.labels],
        confidence=[(b.low, b.high, b.count) for b in facets.confidence],
        safe=facets.moderation.safe,
        unsafe=facets.moderation.unsafe,
        moderation_labels=[(c.label, c.count) for c in facets.moderation.labels],
        interval=interval,
    )


def _charts_from_dashboard(panels: dict[str, Any]) -> Charts:
    return Charts(
        over_time=[(b["start"], b["count"]) for b in panels["over_time"]],
        labels=[(c["label"], c["count"]) for c in panels["top_labels"]],
        confidence=[(b["low"], b["high"], b["count"]) for b in panels["confidence"]],
        safe=panels["moderation"]["safe"],
        unsafe=panels["moderation"]["unsafe"],
        moderation_labels=[(c["label"], c["count"]) for c in panels["moderation"]["labels"]],
        interval=panels["interval"],
    )


def _charts(
    services: Services, report: Report, query: SearchQuery, moment: datetime
) -> tuple[int, Charts, dict[str, Any] | None]:
    """Totals and chart series: the dashboard's panels, or the index's facets for a search."""
    interval = _interval_for(parse_window(report.window))
    for coarser in ("week", "month", None):
        if report.source == "dashboard":
            from imagedex.dashboard import dashboard_data

            panels = dashboard_data(services, query, interval, labels=LABELS, now=moment)
            total, charts, ingest = (
                panels["total"],
                _charts_from_dashboard(panels),
                panels["ingest"],
            )
        else:
            facets = services.index.facets(query, labels=LABELS, interval=interval)
            total, charts, ingest = facets.total, _charts_from_facets(facets, interval), None
        # an "all time" report over years: fewer, wider buckets
        if coarser is None or len(charts.over_time) <= MAX_BUCKETS:
            break
        interval = coarser
    return total, charts, ingest


def gather(
    services: Services,
    report: Report,
    scheduled_for: datetime | None = None,
    thumbnails: bool = False,
) -> ReportData:
    """Everything the renderers need for one run of `report` (its window ends at
    `scheduled_for`, default now); `thumbnails` only for the PDF, the one format that shows them."""
    moment = scheduled_for or datetime.now(UTC)
    query = report_query(report, moment)
    total, charts, ingest = _charts(services, report, query, moment)
    charts.total, charts.timezone = total, report.timezone
    result = services.index.search(query)
    base = services.settings.public_url.rstrip("/") or (
        f"http://{services.settings.host}:{services.settings.port}"
    )
    data = ReportData(
        title=report.display_title,
        query=report.query,
        window=report.window,
        generated_at=moment,
        date_from=query.date_from,
        date_to=query.date_to,
        total=total,
        charts=charts,
        rows=[_row(doc, base) for doc in result.documents],
        ingest=ingest,
        timezone=report.timezone,
    )
    if thumbnails:
        for doc in result.documents:
            thumb = thumbnail_jpeg(services, doc)
            if thumb is not None:
                data.thumbnails[doc.id] = thumb
    return data


def _row(doc: ImageDocument, base: str) -> ReportRow:
    from imagedex.search import content_url

    labels = sorted(doc.labels, key=lambda lb: -lb.confidence)
    return ReportRow(
        id=doc.id,
        title=doc.title,
        key=doc.key,
        ingested_at=doc.ingested_at,
        labels=[(lb.label, round(lb.confidence, 1)) for lb in labels],
        description=doc.description,
        link=base + content_url(doc),
    )


def thumbnail_jpeg(
    services: Services, doc: ImageDocument, size: int = THUMBNAIL_SIZE
) -> bytes | None:
    """A small JPEG of the image, or None when the original cannot be read (the row stays)."""
    try:
        from imagedex import thumbnails

        path = thumbnails.thumbnail(services, doc.id, size)
        return _as_jpeg(path.read_bytes(), size)
    except ImportError:
        pass
    except Exception as exc:
        log.info("thumbnail for %s failed (%s); decoding the original", doc.id, exc)
    try:
        from imagedex.ingest.imaging import decode_image

        decoded = decode_image(services.store.get(doc.key), draft_size=(size, size))
        image = decoded.image
        image.thumbnail((size, size))
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=80)
        return buf.getvalue()
    except Exception as exc:
        log.warning("no thumbnail for %s (%s): %s", doc.id, doc.key, exc)
        return None


def _as_jpeg(data: bytes, size: int) -> bytes:
    """fpdf2 embeds JPEG as is; other formats (WebP thumbnails) are converted once here."""
    if data[:3] == b"\xff\xd8\xff":
        return data
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        image = im.convert("RGB")
        image.thumbnail((size, size))
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=80)
        return buf.getvalue()
