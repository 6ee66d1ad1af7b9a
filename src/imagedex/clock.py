"""The wall clock the scheduler, outbox and alerts read (tests inject their own callables)."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_from_seconds(seconds: float | None) -> str | None:
    """A stored epoch time as ISO-8601 UTC (None stays None)."""
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()
