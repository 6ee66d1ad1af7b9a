"""What every backend's facets share: intervals, bucket edges and the gap-filled time axis.

Backends count; this module shapes the counts, so SQLite, OpenSearch and Elasticsearch give the
same buckets for the same documents. It also counts facets over documents already found
(`count_documents`): a vector query's nearest images, which no backend can filter by.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from imagedex.documents import (
    ConfidenceBucket,
    Facets,
    ImageDocument,
    LabelCount,
    ModerationCounts,
    SearchQuery,
    TimeBucket,
    leaf_label_names,
)

INTERVALS = ("minute", "hour", "day", "week", "month")
CONFIDENCE_STEP = 10
CONFIDENCE_LOWS = tuple(range(0, 100, CONFIDENCE_STEP))
MODERATION_LABELS = 50  # the moderation taxonomy is small; more would be noise
MAX_TIME_BUCKETS = 10_000
MAX_LABELS = 1000
#: Semantic and "more like this" facets count this many nearest images at most (the index
#: answers at most 1000 hits per query; beyond that the matches are the weakest anyway).
NEAREST_FACETS = 1000


def check(labels: int, interval: str) -> None:
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {', '.join(INTERVALS)}, not {interval!r}")
    if not 0 <= labels <= MAX_LABELS:
        raise ValueError(f"labels must be between 0 and {MAX_LABELS}")


def facet_query(query: SearchQuery) -> SearchQuery:
    """Facets count the filtered documents: a vector (semantic / similar) ranks, it does not
    filter, so it is dropped."""
    return dataclasses.replace(query, vector=None, exclude_id="")


def parse_utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def bucket_start(moment: datetime, interval: str) -> datetime:
    """The start of the UTC calendar bucket holding `moment` (weeks start on Monday)."""
    moment = moment.astimezone(UTC).replace(second=0, microsecond=0)
    if interval == "minute":
        return moment
    moment = moment.replace(minute=0)
    if interval == "hour":
        return moment
    moment = moment.replace(hour=0)
    if interval == "day":
        return moment
    if interval == "week":
        return moment - timedelta(days=moment.weekday())
    return moment.replace(day=1)


def next_start(start: datetime, interval: str) -> datetime:
    if interval == "month":
        return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    step = {"minute": 1, "hour": 60, "day": 1440, "week": 10080}[interval]
    return start + timedelta(minutes=step)


def bucket_starts(first: datetime, last: datetime, interval: str) -> list[datetime]:
    """The starts of every bucket from the one holding `first` to the one holding `last`."""
    starts: list[datetime] = []
    current, end = bucket_start(first, interval), bucket_start(last, interval)
    while current <= end:
        if len(starts) == MAX_TIME_BUCKETS:
            raise ValueError(
                f"more than {MAX_TIME_BUCKETS:,} {interval} buckets: choose a longer interval "
                "or a narrower date range"
            )
        starts.append(current)
        try:
            current = next_start(current, interval)
        except (ValueError, OverflowError):  # the end of the calendar
            break
    return starts


def time_buckets(
    counts: Mapping[datetime, int],
    interval: str,
    date_from: str | None = None,
    date_to: str | None = None,
) -> list[TimeBucket]:
    """Every bucket from the first to the last non-empty one, widened to the query's date range
    when it has one, empty buckets included (a time axis without holes)."""
    ends = [m for m, n in counts.items() if n > 0]
    if date_from:
        ends.append(parse_utc(date_from))
    if date_to:
        end = parse_utc(date_to) - timedelta(milliseconds=1)  # `to` is exclusive
        if not date_from or end >= parse_utc(date_from):
            ends.append(end)
    if not ends:
        return []
    merged: dict[datetime, int] = {}
    for moment, n in counts.items():
        key = bucket_start(moment, interval)
        merged[key] = merged.get(key, 0) + n
    return [
        TimeBucket(start.strftime("%Y-%m-%dT%H:%M:%SZ"), merged.get(start, 0))
        for start in bucket_starts(min(ends), max(ends), interval)
    ]


def confidence_buckets(counts: Sequence[int]) -> list[ConfidenceBucket]:
    """`counts[i]`: images whose best label confidence falls in the i-th 10-point bucket."""
    return [
        ConfidenceBucket(low, low + CONFIDENCE_STEP, int(n))
        for low, n in zip(CONFIDENCE_LOWS, counts, strict=True)
    ]


def count_documents(
    documents: Sequence[ImageDocument], query: SearchQuery, labels: int = 20, interval: str = "day"
) -> Facets:
    """Facets over `documents` counted as the backends count the documents a query matches:
    images per leaf label at or above the query's min_confidence, per time bucket, per 10-point
    bucket of their best label, and safe/unsafe at the query's unsafe threshold."""
    check(labels, interval)
    names: dict[str, str] = {}
    per_label: dict[str, int] = {}
    times: dict[datetime, int] = {}
    confidence = [0] * len(CONFIDENCE_LOWS)
    for doc in documents:
        leaves = leaf_label_names(doc.labels)
        counted = {
            lb.label.lower(): lb.label
            for lb in doc.labels
            if lb.label.lower() in leaves and lb.confidence >= query.min_confidence
        }
        for term, name in counted.items():
            names.setdefault(term, name)
            per_label[term] = per_label.get(term, 0) + 1
        try:
            moment = parse_utc(doc.ingested_at)
            times[moment] = times.get(moment, 0) + 1
        except ValueError:  # an ingested_at that is no date: not on the time axis
            pass
        best = max((lb.confidence for lb in doc.labels), default=None)
        if best is not None and best >= 0:
            confidence[min(int(best // CONFIDENCE_STEP), len(confidence) - 1)] += 1
    ranked = sorted(per_label.items(), key=lambda item: (-item[1], item[0]))[:labels]
    return Facets(
        total=len(documents),
        labels=[LabelCount(names[term], n) for term, n in ranked],
        over_time=time_buckets(times, interval, query.date_from, query.date_to),
        confidence=confidence_buckets(confidence),
        moderation=_moderation(documents, query.unsafe_threshold),
    )


def _moderation(documents: Sequence[ImageDocument], threshold: float) -> ModerationCounts:
    unsafe = 0
    names: dict[str, str] = {}
    images: dict[str, int] = {}
    for doc in documents:
        if doc.unsafe_confidence < threshold:
            continue
        unsafe += 1
        seen = {
            str(m["label"]).lower(): str(m["label"])
            for m in doc.moderation
            if m.get("label") and float(m.get("confidence") or 0) >= threshold
        }
        for key, name in seen.items():
            names.setdefault(key, name)
            images[key] = images.get(key, 0) + 1
    ranked = sorted(images.items(), key=lambda item: (-item[1], item[0]))[:MODERATION_LABELS]
    return ModerationCounts(
        safe=len(documents) - unsafe,
        unsafe=unsafe,
        labels=[LabelCount(names[key], n) for key, n in ranked],
    )
