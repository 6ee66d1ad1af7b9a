"""A report definition and one run of it, with the validation every entry point shares."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from imagedex.errors import ConfigError

FORMATS: dict[str, tuple[str, str]] = {  # format -> (content type, file extension)
    "pdf": ("application/pdf", "pdf"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
    "png": ("image/png", "png"),
    "csv": ("text/csv", "csv"),
}
SOURCES = ("search", "dashboard")
MAX_ROWS_LIMIT = 1000  # the index answers at most 1000 hits per query

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_WINDOW = re.compile(r"^(\d{1,5})\s*([mhdw])$")
_WINDOW_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_window(text: str) -> timedelta | None:
    """`24h`, `7d`, `2w`, `30m` -> the period; `all` -> None (no date filter)."""
    value = text.strip().lower()
    if value in ("", "all"):
        return None
    match = _WINDOW.match(value)
    if not match or int(match.group(1)) == 0:
        raise ConfigError(
            f"window {text!r} is not understood; use a number with m, h, d or w "
            "(e.g. 24h, 7d, 2w) or 'all'"
        )
    return timedelta(**{_WINDOW_UNITS[match.group(2)]: int(match.group(1))})


def iso_utc(moment: datetime) -> str:
    """The timestamp shape documents carry in `ingested_at` (so string order is time order)."""
    from datetime import UTC

    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Report:
    name: str
    title: str = ""
    query: str = ""  # search syntax (`label:dog confidence>=80`); empty = every image
    source: str = "search"  # "search": charts + image table; "dashboard": charts first
    formats: tuple[str, ...] = ("pdf",)
    schedule: str = ""  # Schedule.parse syntax; empty = only on demand
    timezone: str = "UTC"
    window: str = "all"
    recipients: tuple[str, ...] = ()
    max_rows: int = 100
    enabled: bool = True
    created_at: str = ""
    updated_at: str = ""

    @property
    def display_title(self) -> str:
        return self.title or self.name

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["formats"] = list(self.formats)
        data["recipients"] = list(self.recipients)
        return data

    def redacted(self) -> dict[str, Any]:
        """What lists, logs and the API show: recipients without tokens from their URLs."""
        from imagedex.notify import parse_target

        data = self.to_dict()
        data["recipients"] = [parse_target(r, warn=False).redacted() for r in self.recipients]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown report field(s): {', '.join(unknown)}")
        values = dict(data)
        for key in ("formats", "recipients"):
            if key in values and isinstance(values[key], str):
                values[key] = [values[key]]
            if key in values:
                values[key] = tuple(values[key] or ())
        return cls(**values)

    def updated(self, **changes: Any) -> Report:
        clean = {k: v for k, v in changes.items() if v is not None}
        return replace(self, **clean)


def validate(report: Report) -> Report:
    """The report with normalised fields, or ConfigError naming what is wrong and how to fix it."""
    if not _NAME.match(report.name):
        raise ConfigError(
            f"report name {report.name!r} must be a slug: lower-case letters, digits, '-' or '_', "
            "starting with a letter or digit, at most 63 characters"
        )
    if len(report.title) > 200:
        raise ConfigError("report title is longer than 200 characters")
    if report.source not in SOURCES:
        raise ConfigError(f"unknown source {report.source!r}; choose from {', '.join(SOURCES)}")
    formats = tuple(dict.fromkeys(f.strip().lower() for f in report.formats if f.strip()))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ConfigError(
            f"unknown format(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)}"
        )
    if not formats:
        raise ConfigError(f"a report needs at least one format ({', '.join(FORMATS)})")
    if not 1 <= report.max_rows <= MAX_ROWS_LIMIT:
        raise ConfigError(f"max_rows must be between 1 and {MAX_ROWS_LIMIT}")
    parse_window(report.window)
    _check_timezone(report.timezone)
    schedule = report.schedule.strip()
    if schedule:
        from imagedex.scheduling.schedule import Schedule

        Schedule.parse(schedule, report.timezone)
    from imagedex.notify import parse_target

    recipients = tuple(r.strip() for r in report.recipients if r.strip())
    for recipient in recipients:
        parse_target(recipient)
    from imagedex.index.query_syntax import parse_query

    try:
        parse_query(report.query)
    except ValueError as exc:  # QuerySyntaxError is a ValueError
        raise ConfigError(f"report query {report.query!r}: {exc}") from exc
    return replace(
        report,
        formats=formats,
        schedule=schedule,
        window=report.window.strip().lower() or "all",
        recipients=recipients,
        query=report.query.strip(),
    )


def _check_timezone(name: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"unknown time zone {name!r}; use an IANA name such as UTC or Europe/Paris"
        ) from exc


@dataclass
class ReportRun:
    id: int
    report: str
    scheduled_for: str
    started: str
    finished: str = ""
    status: str = "running"  # running | ok | partial (a recipient failed) | failed
    rows: int = 0
    total: int = 0
    deliveries: list[str] = field(default_factory=list)
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
