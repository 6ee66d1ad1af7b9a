import json

import pytest

from imagedex.errors import EventParseError
from imagedex.ingest.events import make_notification, parse_notification


def test_round_trip_encodes_and_decodes_awkward_keys() -> None:
    key = "photos/cat 1+été.jpg"
    body = make_notification("created", "images", key, 123, "abc")
    raw_key = body["Records"][0]["s3"]["object"]["key"]
    assert " " not in raw_key and "+" in raw_key  # S3 style: space -> '+', '+' -> %2B
    (event,) = parse_notification(json.dumps(body))
    assert event.key == key
    assert (event.kind, event.bucket, event.size, event.etag) == ("created", "images", 123, "abc")


def test_moto_style_encoded_slash_and_plus() -> None:
    body = {
        "Records": [
            {
                "eventName": "ObjectCreated:CompleteMultipartUpload",
                "s3": {"bucket": {"name": "b"}, "object": {"key": "photos%2Fcat+1.jpg", "size": 5}},
            }
        ]
    }
    (event,) = parse_notification(json.dumps(body))
    assert event.key == "photos/cat 1.jpg"


def test_test_event_is_skipped() -> None:
    body = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"}
    assert parse_notification(json.dumps(body)) == []


def test_removed_event() -> None:
    (event,) = parse_notification(make_notification("removed", "b", "x.jpg"))
    assert event.kind == "removed"


def test_sns_envelope_is_unwrapped() -> None:
    inner = json.dumps(make_notification("created", "b", "a b.jpg", 1, "e"))
    (event,) = parse_notification(json.dumps({"Type": "Notification", "Message": inner}))
    assert event.key == "a b.jpg"


def test_eventbridge_object_created() -> None:
    body = {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": "b"}, "object": {"key": "k.jpg", "size": 3, "etag": "e"}},
    }
    (event,) = parse_notification(body)
    assert (event.kind, event.key, event.etag) == ("created", "k.jpg", "e")


def test_other_event_types_are_ignored() -> None:
    body = {"Records": [{"eventName": "ObjectRestore:Post", "s3": {}}]}
    assert parse_notification(json.dumps(body)) == []


@pytest.mark.parametrize(
    "body, fragment",
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"hello": 1}', "no Records"),
        ('{"Records": [{"eventName": "ObjectCreated:Put"}]}', "lacks s3.bucket.name"),
        ('{"Records": [1]}', "not an object"),
        (
            '{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"},'
            ' "object": {"key": ""}}}]}',
            "empty object key",
        ),
        (b"\xff\xfe", "not JSON"),
    ],
)
def test_malformed_bodies_raise_clear_errors(body: str | bytes, fragment: str) -> None:
    with pytest.raises(EventParseError, match=fragment):
        parse_notification(body)
