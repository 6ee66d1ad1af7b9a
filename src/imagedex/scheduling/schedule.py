"""When a job runs: `hourly`, `daily@08:00`, `weekly@mon 08:00`, `monthly@1 08:00` or cron, in a
time zone, with daylight-saving changes handled the way people expect:

- a wall-clock time that does not exist (spring forward, e.g. 02:30 in Paris on the last Sunday of
  March) runs once, at the same offset from midnight in the new time (03:30);
- a wall-clock time that happens twice (fall back) runs once, at its first occurrence, except
  for schedules that run every hour, which run in both hours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from imagedex.errors import ConfigError

_DAYS = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 0}
_DAY_NAMES = {
    "monday": "mon",
    "tuesday": "tue",
    "wednesday": "wed",
    "thursday": "thu",
    "friday": "fri",
    "saturday": "sat",
    "sunday": "sun",
}
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_HELP = (
    "use hourly, hourly@MM, daily, daily@HH:MM, weekly@mon HH:MM, monthly@D HH:MM "
    "or a 5-field cron expression such as '0 8 * * 1-5'"
)


def _time(text: str, spec: str) -> tuple[int, int]:
    match = _TIME.match(text.strip())
    if not match:
        raise ConfigError(f"schedule {spec!r}: {text!r} is not a time HH:MM")
    hour, minute = int(match[1]), int(match[2])
    if hour > 23 or minute > 59:
        raise ConfigError(f"schedule {spec!r}: {text!r} is not a time of day")
    return hour, minute


def to_cron(spec: str) -> str:
    """The 5-field cron expression a friendly spec stands for (cron passes through, checked)."""
    text = " ".join(spec.strip().lower().split())
    if not text:
        raise ConfigError(f"empty schedule: {_HELP}")
    kind, _, arg = text.partition("@")
    arg = arg.strip()
    if kind == "hourly":
        if not arg:
            return "0 * * * *"
        if not arg.isdigit() or int(arg) > 59:
            raise ConfigError(f"schedule {spec!r}: hourly@MM takes a minute 0-59")
        return f"{int(arg)} * * * *"
    if kind == "daily":
        hour, minute = _time(arg or "00:00", spec)
        return f"{minute} {hour} * * *"
    if kind == "weekly":
        day, _, at = (arg or "mon").partition(" ")
        day = _DAY_NAMES.get(day, day)
        if day not in _DAYS:
            raise ConfigError(f"schedule {spec!r}: {day!r} is not a weekday (mon..sun)")
        hour, minute = _time(at or "00:00", spec)
        return f"{minute} {hour} * * {_DAYS[day]}"
    if kind == "monthly":
        day, _, at = (arg or "1").partition(" ")
        if not day.isdigit() or not 1 <= int(day) <= 28:
            raise ConfigError(
                f"schedule {spec!r}: monthly@D takes a day 1-28 (every month has it); "
                "use cron for other days"
            )
        hour, minute = _time(at or "00:00", spec)
        return f"{minute} {hour} {int(day)} * *"
    fields = text.split(" ")
    if len(fields) != 5 or not croniter.is_valid(text):
        raise ConfigError(f"invalid schedule {spec!r}: {_HELP}")
    return text


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"unknown time zone {name!r} (use e.g. UTC or Europe/Paris)") from exc


@dataclass(frozen=True)
class Schedule:
    spec: str
    timezone: str
    cron: str
    _zone: ZoneInfo = field(repr=False, compare=False)

    @classmethod
    def parse(cls, spec: str, timezone: str = "UTC") -> Schedule:
        cron = to_cron(spec)
        return cls(spec=spec.strip(), timezone=timezone, cron=cron, _zone=zone(timezone))

    @property
    def every_hour(self) -> bool:
        return self.cron.split(" ")[1] == "*"

    def next_after(self, moment: datetime) -> datetime:
        """The first run strictly after `moment` (aware), as an aware UTC datetime."""
        if moment.tzinfo is None:
            raise ValueError("next_after needs an aware datetime")
        # walk naive wall-clock candidates from a little before `moment` (the wall clock can run
        # back an hour at fall-back) and map each to real instants
        local = moment.astimezone(self._zone).replace(tzinfo=None, fold=0)
        candidates = croniter(self.cron, local - timedelta(hours=3))
        for _ in range(100_000):
            wall: datetime = candidates.get_next(datetime)
            for instant in self._instants(wall):
                if instant > moment:
                    return instant
        raise ConfigError(f"schedule {self.spec!r} never runs")

    def _instants(self, wall: datetime) -> list[datetime]:
        first = wall.replace(tzinfo=self._zone, fold=0).astimezone(UTC)
        second = wall.replace(tzinfo=self._zone, fold=1).astimezone(UTC)
        if first == second:
            return [first]
        if _exists(wall, self._zone):  # ambiguous: the wall time happens twice
            return sorted({first, second}) if self.every_hour else [min(first, second)]
        # in the gap: fold=0 reads it with the offset before the change (02:30 -> 03:30)
        return [first]


def _exists(wall: datetime, tz: ZoneInfo) -> bool:
    aware = wall.replace(tzinfo=tz)
    return aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall
