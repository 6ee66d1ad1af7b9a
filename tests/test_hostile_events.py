"""Malformed and hostile queue messages are permanent errors: dead-lettered on their first
receive with a reason, never retried as if a retry could help."""

import json

import pytest

from conftest import ColourRecognizer, png
from imagedex.errors import EventParseError
from imagedex.ingest.events import MAX_EVENT_BYTES, make_notification, parse_notification
from imagedex.ingest.upload import upload_bytes
from imagedex.ingest.worker import Worker
from imagedex.services import Services

DEEP = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"Records": ' + "[" * 50_000 + "]" * 50_000 + "}"


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT])
def test_deep_nesting_is_a_parse_error(body: str) -> None:
    with pytest.raises(EventParseError, match="nested too deeply"):
        parse_notification(body)


def test_an_oversized_body_is_refused_unread() -> None:
    record = make_notification("created", "images", "a.png")["Records"][0]
    body = json.dumps({"Records": [record] * 1000})
    assert len(body) > MAX_EVENT_BYTES
    with pytest.raises(EventParseError, match="more than the 262144"):
        parse_notification(body)


def test_wrong_types_in_an_eventbridge_event_are_parse_errors() -> None:
    body = {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": "b"}, "object": {"key": "k.jpg", "size": "lots"}},
    }
    with pytest.raises(EventParseError):
        parse_notification(json.dumps(body))
    body["detail"]["object"] = ["not", "an", "object"]  # type: ignore[index]
    with pytest.raises(EventParseError):
        parse_notification(json.dumps(body))


def test_sns_envelopes_nested_in_each_other_are_refused() -> None:
    inner = json.dumps(make_notification("created", "images", "a.png"))
    once = json.dumps({"Type": "Notification", "Message": inner})
    assert [e.key for e in parse_notification(once)] == ["a.png"]
    twice = json.dumps({"Type": "Notification", "Message": once})
    with pytest.raises(EventParseError, match="SNS"):
        parse_notification(twice)


def test_hostile_bodies_are_dead_lettered_at_once_and_the_rest_indexed(
    services: Services,
) -> None:
    upload_bytes(services, "good.png", png((255, 0, 0)))
    services.queue.send(DEEP)
    services.queue.send(json.dumps({"Records": [{"eventName": "x", "pad": "a" * MAX_EVENT_BYTES}]}))
    worker = Worker(services, recognizers=[ColourRecognizer()])
    worker.run(once=True)
    assert services.index.count() == 1
    letters = services.queue.dead_letters()
    assert len(letters) == 2
    assert all(letter.receive_count == 1 for letter in letters), "retried as if temporary"
    reasons = sorted(letter.error for letter in letters)
    assert "nested too deeply" in reasons[0] + reasons[1]
    assert "bytes, more than the" in reasons[0] + reasons[1]
    assert worker.stats.retried == 0
