"""S3 event notifications: build them for local uploads, parse whatever S3 (or SNS) delivers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote_plus, unquote_plus

from imagedex.errors import EventParseError

EventKind = Literal["created", "removed"]

#: The largest message body parsed: what SQS, SNS and EventBridge carry at most (256 KiB). An S3
#: notification is about 1 KiB; anything much larger is not one, and is refused unread.
MAX_EVENT_BYTES = 256 * 1024


@dataclass(frozen=True)
class ObjectEvent:
    """One object change, with the key already URL-decoded."""

    kind: EventKind
    bucket: str
    key: str
    size: int = 0
    etag: str = ""
    event_name: str = ""
    event_time: str = ""
    sequencer: str = ""
    force: bool = False  # imagedex's own reprocess events: analyse even if already current
    #: what a reprocess asked to run, (analyzer name, version) pairs; None: the worker's own
    analyzers: tuple[tuple[str, str], ...] | None = None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def make_notification(
    kind: EventKind,
    bucket: str,
    key: str,
    size: int = 0,
    etag: str = "",
    source: str = "imagedex:local",
) -> dict[str, Any]:
    """An S3 event notification body for one object, exactly as S3 would send it to SQS."""
    sequencer = f"{datetime.now(UTC).timestamp():.6f}"
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "sequencer": sequencer}
    if kind == "created":
        obj.update({"size": size, "eTag": etag})
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": source,
                "awsRegion": "local",
                "eventTime": _now(),
                "eventName": "ObjectCreated:Put" if kind == "created" else "ObjectRemoved:Delete",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "imagedex",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": obj,
                },
            }
        ]
    }


def reprocess_notification(
    bucket: str, key: str, size: int, etag: str, analyzers: dict[str, str]
) -> dict[str, Any]:
    """The notification `imagedex reprocess` sends: an object-created event that also says what
    to run (analyzer and enricher names with their versions), so that whichever worker takes it
    runs exactly those, or refuses it."""
    body = make_notification("created", bucket, key, size, etag)
    record = body["Records"][0]
    record["imagedexReprocess"] = True
    record["imagedexAnalyzers"] = dict(analyzers)
    return body


def _analyzers(record: dict[str, Any]) -> tuple[tuple[str, str], ...] | None:
    raw = record.get("imagedexAnalyzers")
    if raw is None:
        return None
    if (
        not isinstance(raw, dict)
        or not raw
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items())
    ):
        raise EventParseError("imagedexAnalyzers must map analyzer names to versions")
    return tuple(raw.items())


def _record_to_event(record: Any) -> ObjectEvent | None:
    if not isinstance(record, dict):
        raise EventParseError("a record in the notification is not an object")
    name = str(record.get("eventName", ""))
    kind_name = name.removeprefix("s3:")  # MinIO and some Ceph RGW versions: s3:ObjectCreated:Put
    if kind_name.startswith("ObjectCreated:"):
        kind: EventKind = "created"
    elif kind_name.startswith("ObjectRemoved:"):
        kind = "removed"
    else:
        return None  # other S3 events (restore, replication, ...) carry nothing to index
    s3 = record.get("s3")
    try:
        bucket = str(s3["bucket"]["name"])  # type: ignore[index]
        obj = s3["object"]  # type: ignore[index]
        raw_key = obj["key"]
    except (KeyError, TypeError) as exc:
        raise EventParseError(f"{name} record lacks s3.bucket.name or s3.object.key") from exc
    if not isinstance(raw_key, str) or not raw_key:
        raise EventParseError(f"{name} record has an empty object key")
    try:
        size = int(obj.get("size") or 0)
    except (TypeError, ValueError) as exc:
        raise EventParseError(f"{name} record has a non-numeric size") from exc
    return ObjectEvent(
        kind=kind,
        bucket=bucket,
        key=unquote_plus(raw_key),
        size=size,
        etag=str(obj.get("eTag") or obj.get("etag") or "").strip('"'),
        event_name=name,
        event_time=str(record.get("eventTime", "")),
        sequencer=str(obj.get("sequencer", "")),
        force=record.get("imagedexReprocess") is True,
        analyzers=_analyzers(record),
    )


def _eventbridge_to_event(body: dict[str, Any]) -> ObjectEvent | None:
    detail_type = body.get("detail-type")
    if detail_type not in ("Object Created", "Object Deleted"):
        return None
    detail = body.get("detail")
    try:
        bucket = str(detail["bucket"]["name"])  # type: ignore[index]
        obj = detail["object"]  # type: ignore[index]
        key = str(obj["key"])
    except (KeyError, TypeError) as exc:
        raise EventParseError(
            "EventBridge event lacks detail.bucket.name or detail.object.key"
        ) from exc
    return ObjectEvent(
        kind="created" if detail_type == "Object Created" else "removed",
        bucket=bucket,
        key=unquote_plus(key),
        size=int(obj.get("size") or 0),
        etag=str(obj.get("etag") or "").strip('"'),
        event_name=f"EventBridge:{detail_type}",
        event_time=str(body.get("time", "")),
        sequencer=str(obj.get("sequencer", "")),
    )


def parse_notification(body: str | bytes | dict[str, Any]) -> list[ObjectEvent]:
    """Turn a queue message body into object events.

    Accepts S3 notification JSON, the same wrapped in an SNS envelope, and EventBridge S3 events.
    `s3:TestEvent` and event types that carry nothing to index give an empty list; anything else
    that is not understood (too large, nested too deep, wrong types) raises EventParseError with
    the reason: no retry can make such a body parse, so it is never a temporary error.
    """
    try:
        return _parse(body, envelope=True)
    except EventParseError:
        raise
    except RecursionError:
        raise EventParseError("message body is nested too deeply to be an S3 event") from None
    except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as exc:
        raise EventParseError(f"message body is not a valid S3 event ({exc})") from exc


def _parse(body: str | bytes | dict[str, Any], envelope: bool) -> list[ObjectEvent]:
    if isinstance(body, bytes | str):
        size = len(body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body)
        if size > MAX_EVENT_BYTES:
            raise EventParseError(
                f"message body is {size} bytes, more than the {MAX_EVENT_BYTES} an S3 event "
                "notification can be"
            )
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise EventParseError(f"message body is not JSON: {exc}") from exc
    else:
        data = body
    if not isinstance(data, dict):
        raise EventParseError("message body is not a JSON object")
    if data.get("Type") == "Notification" and "Message" in data:
        if not envelope:  # SNS never wraps its own envelope in another
            raise EventParseError("SNS envelope inside an SNS envelope")
        return _parse(str(data["Message"]), envelope=False)
    if data.get("Event") == "s3:TestEvent":
        return []
    if "detail-type" in data and data.get("source") == "aws.s3":
        event = _eventbridge_to_event(data)
        return [event] if event else []
    records = data.get("Records")
    if not isinstance(records, list):
        raise EventParseError("message is not an S3 event notification (no Records list)")
    return [event for event in map(_record_to_event, records) if event is not None]
