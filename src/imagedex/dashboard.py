"""The dashboard's numbers: one dict the web app, the CSV export and the reports all read.

`dashboard_data(services, query, interval)` returns (JSON-ready):

    {
      "generated_at": "2026-01-02T10:00:00Z",
      "interval": "day",                      # minute | hour | day | week | month
      "total": 1234,                          # documents matching the query
      "over_time":  [{"start": "2026-01-01T00:00:00Z", "count": 12}, ...],
      "top_labels": [{"label": "dog", "count": 40}, ...],            # most frequent first
      "confidence": [{"low": 0, "high": 10, "count": 3}, ...],       # best label confidence
      "moderation": {"safe": 1200, "unsafe": 34,
                     "labels": [{"label": "Suggestive", "count": 20}, ...]},
      "people": [{"id": 3, "name": "Anna", "count": 25}, ...],  # images per person, most first
      "ingest": {
        "queue": {"visible": 0, "in_flight": 0, "dead": 1},
        "dead_letters": 1,
        "recent_failures": [{"id": "...", "error": "...", "failed_at": "...Z"}],  # at most 5
        "throughput": {"last_hour": 90, "per_minute_average": 1.5,
                       "per_minute": [{"start": "...Z", "count": 2}, ...]}      # 60 minutes
      }
    }

Every panel but `ingest` is computed over the documents matching the query (the dashboard's
filters apply to each of them); `ingest` describes the whole deployment. Documents whose analyzers
failed are not counted: the index offers no cheap way to count them (errors are stored, not
indexed), and a scan of every document would not belong on a page that refreshes.

`people` counts the images showing each person (the faces' person ids in the index, named from
the data dir's people store at request time, so a rename needs no reindex); hidden people are
left out, and without a people store (face recognition never on) it is empty. On an engine
index made before faces were nested it is empty too, with the reason in `people_error`.

`panel_rows(data, panel)` flattens one panel into a CSV/XLSX header and rows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from imagedex.documents import SearchQuery
from imagedex.errors import ConfigError
from imagedex.people.store import FILE_NAME as PEOPLE_FILE
from imagedex.people.store import PeopleStore
from imagedex.services import Services

INTERVALS = ("minute", "hour", "day", "week", "month")
PANELS = ("over_time", "top_labels", "confidence", "moderation", "people", "ingest")
TOP_LABELS = 20
TOP_PEOPLE = 10
THROUGHPUT_MINUTES = 60
RECENT_FAILURES = 5


def dashboard_data(
    services: Services,
    query: SearchQuery,
    interval: str = "day",
    labels: int = TOP_LABELS,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Every panel of the dashboard for the documents matching `query` (see the module doc)."""
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {', '.join(INTERVALS)} (got {interval!r})")
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    facets = services.index.facets(query, labels=labels, interval=interval)
    people, people_error = top_people(services, query)
    data: dict[str, Any] = {
        "generated_at": _iso(moment),
        "interval": interval,
        "total": facets.total,
        "over_time": [{"start": b.start, "count": b.count} for b in facets.over_time],
        "top_labels": [{"label": c.label, "count": c.count} for c in facets.labels],
        "confidence": [{"low": b.low, "high": b.high, "count": b.count} for b in facets.confidence],
        "moderation": {
            "safe": facets.moderation.safe,
            "unsafe": facets.moderation.unsafe,
            "labels": [{"label": c.label, "count": c.count} for c in facets.moderation.labels],
        },
        "people": people,
        "ingest": ingest_health(services, moment),
    }
    if people_error:
        data["people_error"] = people_error
    return data


def top_people(
    services: Services, query: SearchQuery, limit: int = TOP_PEOPLE
) -> tuple[list[dict[str, Any]], str]:
    """The people on the most matching images, hidden ones left out; and why not, if not."""
    path = Path(services.settings.data_dir) / PEOPLE_FILE
    if not path.is_file():  # a dashboard never creates the people store
        return [], ""
    store = PeopleStore(path)
    try:
        try:
            counted = services.index.top_people(query, limit, exclude=store.hidden_ids())
        except ConfigError as exc:  # an engine index without nested faces: migrate
            return [], str(exc)
        rows = []
        for person_id, images in counted:
            person = store.get(person_id)
            if person is not None and not person.hidden:  # hidden meanwhile
                rows.append({"id": person.id, "name": person.name, "count": images})
        return rows, ""
    finally:
        store.close()


def ingest_health(services: Services, now: datetime) -> dict[str, Any]:
    """Queue depth, dead letters and how many documents were indexed per minute in the last hour."""
    stats = services.queue.stats()
    failures = services.queue.dead_letters(RECENT_FAILURES) if stats.dead else []
    per_minute = _throughput(services, now)
    last_hour = sum(bucket["count"] for bucket in per_minute)
    return {
        "queue": {"visible": stats.visible, "in_flight": stats.in_flight, "dead": stats.dead},
        "dead_letters": stats.dead,
        "recent_failures": [
            {
                "id": letter.id,
                "error": letter.error,
                "failed_at": _iso(datetime.fromtimestamp(letter.failed_at, UTC))
                if letter.failed_at
                else None,
            }
            for letter in failures
        ],
        "throughput": {
            "last_hour": last_hour,
            "per_minute_average": round(last_hour / THROUGHPUT_MINUTES, 2),
            "per_minute": per_minute,
        },
    }


def _throughput(services: Services, now: datetime) -> list[dict[str, Any]]:
    """One bucket per minute of the last hour (the current minute last), empty minutes as 0."""
    first = now.replace(second=0, microsecond=0) - timedelta(minutes=THROUGHPUT_MINUTES - 1)
    recent = SearchQuery(date_from=_iso(first), date_to=_iso(now + timedelta(seconds=1)))
    facets = services.index.facets(recent, labels=0, interval="minute")
    counts: dict[datetime, int] = {}
    for bucket in facets.over_time:
        minute = _parse(bucket.start).replace(second=0, microsecond=0)
        counts[minute] = counts.get(minute, 0) + bucket.count
    minutes = [first + timedelta(minutes=i) for i in range(THROUGHPUT_MINUTES)]
    return [{"start": _iso(m), "count": counts.get(m, 0)} for m in minutes]


def panel_rows(data: dict[str, Any], panel: str) -> tuple[list[str], list[list[Any]]]:
    """One panel of `dashboard_data` as a header and rows (for CSV and spreadsheets)."""
    if panel == "over_time":
        return ["start", "count"], [[b["start"], b["count"]] for b in data["over_time"]]
    if panel == "top_labels":
        return ["label", "count"], [[c["label"], c["count"]] for c in data["top_labels"]]
    if panel == "confidence":
        return ["low", "high", "count"], [
            [b["low"], b["high"], b["count"]] for b in data["confidence"]
        ]
    if panel == "moderation":
        moderation = data["moderation"]
        rows: list[list[Any]] = [
            ["state", "safe", moderation["safe"]],
            ["state", "unsafe", moderation["unsafe"]],
        ]
        rows += [["label", c["label"], c["count"]] for c in moderation["labels"]]
        return ["kind", "name", "count"], rows
    if panel == "people":
        return ["person_id", "name", "images"], [
            [p["id"], p["name"], p["count"]] for p in data["people"]
        ]
    if panel == "ingest":
        ingest = data["ingest"]
        rows = [["queue_" + name, "", value] for name, value in ingest["queue"].items()]
        rows.append(["ingested_last_hour", "", ingest["throughput"]["last_hour"]])
        rows += [
            ["ingested_per_minute", b["start"], b["count"]]
            for b in ingest["throughput"]["per_minute"]
        ]
        return ["metric", "start", "value"], rows
    raise ValueError(f"unknown panel {panel!r}; panels: {', '.join(PANELS)}")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
