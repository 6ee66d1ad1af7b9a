"""Times as a report's readers see them: in the report's time zone, to the minute.

The index keeps UTC (`2026-03-02T07:00:00.000Z`); a report set to Europe/Paris says
`Mon 2 Mar 2026 08:00 CET` in its text and `20260302-0800` in its file names.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def local(moment: datetime | str, timezone: str) -> datetime:
    """`moment` (aware, or an ISO-8601 text; naive means UTC) in `timezone`."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(ZoneInfo(timezone))


def local_or_none(text: str, timezone: str) -> datetime | None:
    """An ingested_at in `timezone`, or None when it is not a date (kept as written then)."""
    try:
        return local(text, timezone)
    except (ValueError, OverflowError):
        return None


def human(moment: datetime | str, timezone: str) -> str:
    """`Mon 2 Mar 2026 08:00 CET`: the weekday, the date, the minute and the zone's abbreviation
    (which says whether summer time applies)."""
    shown = local(moment, timezone)
    return f"{shown:%a} {shown.day} {shown:%b %Y %H:%M} {zone_abbreviation(shown)}"


def short(moment: datetime | str, timezone: str) -> str:
    """`2026-03-02 08:00` in `timezone`, for table cells under a heading that names the zone."""
    return f"{local(moment, timezone):%Y-%m-%d %H:%M}"


def stamp(moment: datetime, timezone: str) -> str:
    """`20260302-0800`: the local minute, for file names."""
    return f"{local(moment, timezone):%Y%m%d-%H%M}"


def zone_abbreviation(moment: datetime) -> str:
    """CET, CEST, UTC; zones without a letter abbreviation show their offset (`UTC-03:00`)."""
    name = moment.strftime("%Z")
    if name and name[0] not in "+-":
        return name
    offset = moment.strftime("%z")  # +0530
    return f"UTC{offset[:3]}:{offset[3:]}"


def period(date_from: str | None, date_to: str | None, timezone: str) -> str:
    """The window a report covers, in its time zone (`to` is exclusive, as in the query)."""
    if date_from is None and date_to is None:
        return "all time"
    start = human(date_from, timezone) if date_from else "…"
    end = human(date_to, timezone) if date_to else "…"
    return f"{start} to {end}"
