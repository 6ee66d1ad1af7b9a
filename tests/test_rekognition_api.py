"""The unmodified boto3 `rekognition` client against the real imagedex app (uvicorn on
127.0.0.1), every answer checked against botocore's own service model."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from PIL import Image

from conftest import jpeg_bytes, real_photos
from imagedex.config import Settings
from imagedex.services import Services
from live_app import live_app
from rekognition_model import RawAnswers
from test_analyzer_ocr import sign_image

NO_RETRIES = Config(retries={"total_max_attempts": 1})


def client(url: str, key: str = "anything", secret: str = "anything", **extra: Any) -> Any:
    return boto3.client(
        "rekognition",
        endpoint_url=f"{url}/rekognition",
        region_name="eu-west-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=NO_RETRIES.merge(Config(**extra)) if extra else NO_RETRIES,
    )


def png(size: tuple[int, int], colour: tuple[int, int, int] = (90, 140, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def photos() -> dict[str, bytes]:
    return {name: jpeg_bytes(array) for name, array in real_photos().items()}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, photos: dict[str, bytes]) -> Iterator[Any]:
    services = Services.from_settings(
        Settings(data_dir=tmp_path_factory.mktemp("rekognition"), semantic=False)
    )
    services.store.put("pets/chelsea.jpg", photos["chelsea.jpg"], "image/jpeg")
    services.store.put("big/noise.jpg", photos["chelsea.jpg"] + os.urandom(16 * 1024 * 1024))
    with live_app(services) as url:
        yield url, services
    services.close()


@pytest.fixture
def rek(server: Any) -> tuple[Any, RawAnswers]:
    c = client(server[0])
    return c, RawAnswers(c)


def error(call: Any) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


def test_detect_labels_answers_like_rekognition(rek: Any, photos: dict[str, bytes]) -> None:
    c, raw = rek
    answer = c.detect_labels(Image={"Bytes": photos["chelsea.jpg"]}, MaxLabels=10, MinConfidence=60)
    raw.check_last()
    labels = answer["Labels"]
    names = [label["Name"] for label in labels]
    assert "Cat" in names and len(labels) <= 10
    confidences = [label["Confidence"] for label in labels]
    assert confidences == sorted(confidences, reverse=True) and min(confidences) >= 60
    cat = labels[names.index("Cat")]
    assert {"Name": "Animal"} in cat["Parents"] and cat["Categories"] == [{"Name": "Animal"}]
    assert answer["LabelModelVersion"].startswith("imagenet-")

    fewer = c.detect_labels(Image={"Bytes": photos["chelsea.jpg"]}, MaxLabels=2)
    assert [label["Name"] for label in fewer["Labels"]] == names[:2]


def test_detect_labels_boxes_filters_and_s3_objects(
    rek: Any, server: Any, photos: dict[str, bytes]
) -> None:
    c, raw = rek
    answer = c.detect_labels(Image={"Bytes": photos["astronaut.jpg"]}, MinConfidence=50)
    raw.check_last()
    person = next(label for label in answer["Labels"] if label["Name"] == "Person")
    (box,) = [i["BoundingBox"] for i in person["Instances"][:1]]
    assert 0 <= box["Left"] < box["Left"] + box["Width"] <= 1 and 0.3 < box["Height"] <= 1

    only = c.detect_labels(
        Image={"Bytes": photos["astronaut.jpg"]},
        Settings={"GeneralLabels": {"LabelInclusionFilters": ["Person"]}},
    )
    raw.check_last()
    assert [label["Name"] for label in only["Labels"]] == ["Person"]

    bucket = server[1].store.bucket
    stored = c.detect_labels(Image={"S3Object": {"Bucket": bucket, "Name": "pets/chelsea.jpg"}})
    raw.check_last()
    assert "Cat" in [label["Name"] for label in stored["Labels"]]


@pytest.mark.parametrize(
    ("image", "code", "words"),
    [
        ({"Bytes": b"just some text, no image"}, "InvalidImageFormatException", "JPEG and PNG"),
        ({"Bytes": b"GIF89a" + png((100, 100))[6:]}, "InvalidImageFormatException", "image/gif"),
        ({"Bytes": png((200, 60))}, "InvalidParameterException", "80 pixels"),
        ({"Bytes": b"\xff\xd8\xff" + bytes(5 * 1024 * 1024)}, "ImageTooLargeException", "5242880"),
        ({"Bytes": b"\xff\xd8\xff" + bytes(7 * 1024 * 1024)}, "ImageTooLargeException", "5242880"),
        (
            {"S3Object": {"Bucket": "elsewhere", "Name": "a.jpg"}},
            "InvalidS3ObjectException",
            "only",
        ),
        ({"S3Object": {"Bucket": "", "Name": "pets/none.jpg"}}, "InvalidS3ObjectException", ""),
        (
            {"S3Object": {"Bucket": "", "Name": "big/noise.jpg"}},
            "ImageTooLargeException",
            "15728640",
        ),
    ],
)
def test_bad_images_get_rekognitions_errors(
    rek: Any, server: Any, image: dict[str, Any], code: str, words: str
) -> None:
    c, raw = rek
    if "S3Object" in image and not image["S3Object"]["Bucket"]:
        image = {"S3Object": {**image["S3Object"], "Bucket": server[1].store.bucket}}
    for call in (c.detect_labels, c.detect_faces, c.detect_text, c.detect_moderation_labels):
        got_code, status, message = error(lambda call=call: call(Image=image))
        assert (got_code, status) == (code, 400) and words in message, message
        raw.check_last()


def test_moderation_text_and_faces(rek: Any, photos: dict[str, bytes]) -> None:
    c, raw = rek
    moderation = c.detect_moderation_labels(Image={"Bytes": photos["chelsea.jpg"]}, MinConfidence=0)
    raw.check_last()
    assert moderation["ModerationLabels"] == [] and moderation["ModerationModelVersion"]

    faces = c.detect_faces(Image={"Bytes": photos["astronaut.jpg"]}, Attributes=["ALL"])
    raw.check_last()
    (face,) = faces["FaceDetails"]
    box = face["BoundingBox"]
    assert face["Confidence"] > 50 and 0.25 < box["Left"] + box["Width"] / 2 < 0.6
    points = {mark["Type"]: (mark["X"], mark["Y"]) for mark in face["Landmarks"]}
    assert set(points) == {"eyeLeft", "eyeRight", "nose"}
    assert points["eyeLeft"][0] < points["nose"][0] < points["eyeRight"][0]
    for x, y in points.values():  # inside the face box
        assert box["Left"] < x < box["Left"] + box["Width"]
        assert box["Top"] < y < box["Top"] + box["Height"]
    assert c.detect_faces(Image={"Bytes": photos["gold_fish.jpg"]})["FaceDetails"] == []
    raw.check_last()


def sign_bytes() -> bytes:
    buffer = io.BytesIO()
    sign_image().save(buffer, "PNG")
    return buffer.getvalue()


def test_detect_text_lines_words_geometry_and_filters(rek: Any) -> None:
    c, raw = rek
    answer = c.detect_text(Image={"Bytes": sign_bytes()})
    raw.check_last()
    detections = answer["TextDetections"]
    (line,) = [d for d in detections if d["Type"] == "LINE"]
    words = [d for d in detections if d["Type"] == "WORD"]
    assert line["DetectedText"].upper() == "OPEN 24 HOURS"
    assert [w["DetectedText"].upper() for w in words] == ["OPEN", "24", "HOURS"]
    assert all(w["ParentId"] == line["Id"] for w in words)
    assert len({d["Id"] for d in detections}) == 4
    outer = line["Geometry"]["BoundingBox"]
    lefts = [w["Geometry"]["BoundingBox"]["Left"] for w in words]
    assert outer["Left"] <= lefts[0] < lefts[1] < lefts[2] < outer["Left"] + outer["Width"]
    assert 0.3 < outer["Top"] + outer["Height"] / 2 < 0.7  # drawn centred on the sign
    assert len(line["Geometry"]["Polygon"]) == 4

    left_half = {"BoundingBox": {"Left": 0, "Top": 0, "Width": 0.45, "Height": 1}}
    filtered = c.detect_text(
        Image={"Bytes": sign_bytes()}, Filters={"RegionsOfInterest": [left_half]}
    )
    raw.check_last()
    kept = [d["DetectedText"].upper() for d in filtered["TextDetections"] if d["Type"] == "WORD"]
    assert kept == ["OPEN"]
    wide_only = c.detect_text(
        Image={"Bytes": sign_bytes()},
        Filters={"WordFilter": {"MinBoundingBoxWidth": outer["Width"] / 5}},
    )
    kept = [d["DetectedText"].upper() for d in wide_only["TextDetections"] if d["Type"] == "WORD"]
    assert kept == ["OPEN", "HOURS"]


def test_operations_not_served_say_so(rek: Any) -> None:
    c, _raw = rek
    code, status, message = error(
        lambda: c.detect_protective_equipment(Image={"Bytes": png((100, 100))})
    )
    assert (code, status) == ("UnknownOperationException", 400)
    assert "DetectProtectiveEquipment" in message and "RekognitionService.IndexFaces" in message


def test_requests_boto3_would_not_send(server: Any) -> None:
    """Other clients may send anything: each mistake is one Rekognition error naming it."""
    url = f"{server[0]}/rekognition"
    target = {"X-Amz-Target": "RekognitionService.DetectLabels"}
    json_type = {"Content-Type": "application/x-amz-json-1.1"}
    cases = [
        (target | json_type, b"{not json", "SerializationException"),
        (target | json_type, b"[]", "SerializationException"),
        (target | {"Content-Type": "text/plain"}, b"{}", "SerializationException"),
        (json_type, b"{}", "UnknownOperationException"),
        (target | json_type, b"{}", "InvalidParameterException"),
        (target | json_type, b'{"Image": {"Bytes": "@@@"}}', "InvalidParameterException"),
        (target | json_type, b'{"Image": {"Bytes": "AAAA"}, "MaxLabels": -1}', "Invalid"),
    ]
    for headers, body, code in cases:
        answer = httpx.post(url, headers=headers, content=body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["__type"].startswith(code) and answer.json()["message"]
        assert answer.headers["x-amzn-errortype"] == answer.json()["__type"]
