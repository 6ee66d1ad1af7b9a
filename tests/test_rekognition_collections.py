"""Rekognition face collections through the unmodified boto3 client against the real app
(uvicorn on 127.0.0.1), every raw answer checked against botocore's service model: index Obama,
find him again in other photos of him and not in Biden's; the reasons faces are not indexed;
Rekognition's errors; who may change a collection."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from imagedex.api.rekognition.face_match import FaceEngine
from imagedex.api.rekognition.images import FACE_DECODE_SIZE
from imagedex.config import Settings
from imagedex.ingest.imaging import decode_image
from imagedex.services import Services
from live_app import live_app
from rekognition_model import RawAnswers
from test_rekognition_api import client, error, png
from test_rekognition_auth import new_key, sigv4_credentials

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from labelled_photos import photos as labelled_photos

PORTRAITS = ("obama", "obama2", "obama3", "biden")


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def portraits() -> dict[str, Image.Image]:
    return {
        photo_id.split("/")[1]: image
        for photo_id, image, _ in labelled_photos(sources=["face_recognition"])
        if photo_id.split("/")[1] in PORTRAITS
    }


@pytest.fixture(scope="module")
def faces(portraits: dict[str, Image.Image]) -> dict[str, bytes]:
    return {name: jpeg(image) for name, image in portraits.items()}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, faces: dict[str, bytes]) -> Iterator[Any]:
    data_dir = tmp_path_factory.mktemp("collections")
    services = Services.from_settings(Settings(data_dir=data_dir, semantic=False))
    services.store.put("people/obama3.jpg", faces["obama3"], "image/jpeg")
    with live_app(services) as url:
        yield url, services, data_dir
    services.close()


@pytest.fixture
def rek(server: Any) -> tuple[Any, RawAnswers]:
    c = client(server[0])
    return c, RawAnswers(c)


def test_index_obama_find_him_again_not_biden(rek: Any, server: Any, faces: Any) -> None:
    c, raw = rek
    created = c.create_collection(CollectionId="family")
    raw.check_last()
    assert created["StatusCode"] == 200
    assert created["CollectionArn"].endswith(":collection/family")
    assert c.describe_collection(CollectionId="family")["FaceCount"] == 0
    raw.check_last()

    indexed = c.index_faces(
        CollectionId="family", Image={"Bytes": faces["obama"]}, ExternalImageId="obama.jpg"
    )
    raw.check_last()
    (record,) = indexed["FaceRecords"]
    face = record["Face"]
    assert face["ExternalImageId"] == "obama.jpg" and face["Confidence"] > 80
    assert 0.2 < face["BoundingBox"]["Left"] + face["BoundingBox"]["Width"] / 2 < 0.8
    assert record["FaceDetail"]["BoundingBox"] == face["BoundingBox"]

    found = c.search_faces_by_image(CollectionId="family", Image={"Bytes": faces["obama2"]})
    raw.check_last()
    (match,) = found["FaceMatches"]
    assert match["Face"]["FaceId"] == face["FaceId"] and match["Similarity"] > 80
    assert found["SearchedFaceConfidence"] > 80
    assert "Embedding" not in str(found) and "descriptor" not in str(found).lower()

    nobody = c.search_faces_by_image(CollectionId="family", Image={"Bytes": faces["biden"]})
    raw.check_last()
    assert nobody["FaceMatches"] == []
    loose = c.search_faces_by_image(
        CollectionId="family", Image={"Bytes": faces["biden"]}, FaceMatchThreshold=0
    )
    assert [m["Face"]["FaceId"] for m in loose["FaceMatches"]] == [face["FaceId"]]
    assert loose["FaceMatches"][0]["Similarity"] < 60

    # a second photo of him, read from the store: SearchFaces by id finds the first
    bucket = server[1].store.bucket
    again = c.index_faces(
        CollectionId="family",
        Image={"S3Object": {"Bucket": bucket, "Name": "people/obama3.jpg"}},
    )
    raw.check_last()
    second = again["FaceRecords"][0]["Face"]
    assert "ExternalImageId" not in second and second["ImageId"] != face["ImageId"]
    by_id = c.search_faces(CollectionId="family", FaceId=second["FaceId"])
    raw.check_last()
    assert [m["Face"]["FaceId"] for m in by_id["FaceMatches"]] == [face["FaceId"]]

    listed = c.list_faces(CollectionId="family")
    raw.check_last()
    assert {f["FaceId"] for f in listed["Faces"]} == {face["FaceId"], second["FaceId"]}
    assert c.describe_collection(CollectionId="family")["FaceCount"] == 2

    gone = "00000000-0000-4000-8000-000000000000"
    deleted = c.delete_faces(CollectionId="family", FaceIds=[face["FaceId"], gone])
    raw.check_last()
    assert deleted["DeletedFaces"] == [face["FaceId"]]
    assert deleted["UnsuccessfulFaceDeletions"] == [{"FaceId": gone, "Reasons": ["FACE_NOT_FOUND"]}]
    after = c.search_faces_by_image(CollectionId="family", Image={"Bytes": faces["obama2"]})
    assert [m["Face"]["FaceId"] for m in after["FaceMatches"]] == [second["FaceId"]]

    assert c.delete_collection(CollectionId="family")["StatusCode"] == 200
    raw.check_last()
    code, status, _ = error(lambda: c.describe_collection(CollectionId="family"))
    assert (code, status) == ("ResourceNotFoundException", 400)
    raw.check_last()


def test_faces_left_out_say_why(rek: Any, portraits: dict[str, Image.Image]) -> None:
    c, raw = rek
    c.create_collection(CollectionId="reasons")
    pair = Image.new("RGB", (2000, 1200), (128, 128, 128))
    pair.paste(portraits["obama"].resize((455, 568)), (100, 300))
    pair.paste(portraits["biden"].resize((485, 1102)), (1200, 50))
    two = c.index_faces(CollectionId="reasons", Image={"Bytes": jpeg(pair)}, MaxFaces=1)
    raw.check_last()
    (kept,) = two["FaceRecords"]
    (left_out,) = two["UnindexedFaces"]
    assert left_out["Reasons"] == ["EXCEEDS_MAX_FACES"]
    kept_box, other_box = kept["Face"]["BoundingBox"], left_out["FaceDetail"]["BoundingBox"]
    assert kept_box["Width"] * kept_box["Height"] > other_box["Width"] * other_box["Height"]

    # Biden's face scores 85: HIGH asks for 90
    strict = c.index_faces(
        CollectionId="reasons", Image={"Bytes": jpeg(portraits["biden"])}, QualityFilter="HIGH"
    )
    raw.check_last()
    assert strict["FaceRecords"] == []
    assert strict["UnindexedFaces"][0]["Reasons"] == ["LOW_CONFIDENCE"]

    small = Image.new("RGB", (1200, 1200), (128, 128, 128))
    small.paste(portraits["obama"].resize((61, 76)), (600, 600))
    tiny = c.index_faces(CollectionId="reasons", Image={"Bytes": jpeg(small)})
    raw.check_last()
    assert tiny["FaceRecords"] == []
    assert "SMALL_BOUNDING_BOX" in tiny["UnindexedFaces"][0]["Reasons"]
    anyway = c.index_faces(
        CollectionId="reasons", Image={"Bytes": jpeg(small)}, QualityFilter="NONE"
    )
    assert len(anyway["FaceRecords"]) == 1 and anyway["UnindexedFaces"] == []
    assert c.describe_collection(CollectionId="reasons")["FaceCount"] == 2
    c.delete_collection(CollectionId="reasons")


def test_listing_pages_through_collections(rek: Any) -> None:
    c, raw = rek
    for name in ("page-a", "page-b", "page-c"):
        c.create_collection(CollectionId=name)
    seen, token = [], None
    while True:
        answer = c.list_collections(MaxResults=2, **({"NextToken": token} if token else {}))
        raw.check_last()
        seen += answer["CollectionIds"]
        assert len(answer["FaceModelVersions"]) == len(answer["CollectionIds"])
        token = answer.get("NextToken")
        if not token:
            break
    assert [s for s in seen if s.startswith("page-")] == ["page-a", "page-b", "page-c"]
    paginated = c.get_paginator("list_collections").paginate(PaginationConfig={"PageSize": 1})
    assert "page-c" in [i for page in paginated for i in page["CollectionIds"]]
    code, _, _ = error(lambda: c.list_collections(NextToken="not a token!"))
    assert code == "InvalidPaginationTokenException"
    raw.check_last()
    for name in ("page-a", "page-b", "page-c"):
        c.delete_collection(CollectionId=name)


def test_rekognitions_errors(rek: Any, faces: dict[str, bytes]) -> None:
    c, raw = rek
    c.create_collection(CollectionId="errors")
    code, status, _ = error(lambda: c.create_collection(CollectionId="errors"))
    assert (code, status) == ("ResourceAlreadyExistsException", 400)
    raw.check_last()
    calls = {
        "IndexFaces": lambda: c.index_faces(CollectionId="nope", Image={"Bytes": faces["obama"]}),
        "SearchFacesByImage": lambda: c.search_faces_by_image(
            CollectionId="nope", Image={"Bytes": faces["obama"]}
        ),
        "ListFaces": lambda: c.list_faces(CollectionId="nope"),
        "DeleteCollection": lambda: c.delete_collection(CollectionId="nope"),
        "DeleteFaces": lambda: c.delete_faces(
            CollectionId="nope", FaceIds=["00000000-0000-4000-8000-000000000000"]
        ),
    }
    for name, call in calls.items():
        code, status, message = error(call)
        assert (code, status) == ("ResourceNotFoundException", 400), name
        assert "'nope'" in message
        raw.check_last()

    blank = {"Bytes": png((300, 300))}
    code, status, message = error(
        lambda: c.search_faces_by_image(CollectionId="errors", Image=blank)
    )
    assert (code, status) == ("InvalidParameterException", 400) and "no faces" in message
    raw.check_last()
    nothing = c.index_faces(CollectionId="errors", Image=blank)
    raw.check_last()
    assert nothing["FaceRecords"] == [] and nothing["UnindexedFaces"] == []

    for call in (
        lambda: c.create_collection(CollectionId="with spaces"),
        lambda: c.index_faces(
            CollectionId="errors", Image={"Bytes": faces["obama"]}, ExternalImageId="a/b"
        ),
        lambda: c.create_collection(CollectionId="tagged", Tags={"team": "a"}),
        lambda: c.search_faces(
            CollectionId="errors", FaceId="11111111-1111-4111-8111-111111111111"
        ),
    ):
        code, status, _ = error(call)
        assert (code, status) == ("InvalidParameterException", 400)
        raw.check_last()
    code, _, _ = error(
        lambda: c.index_faces(CollectionId="errors", Image={"Bytes": b"not an image"})
    )
    assert code == "InvalidImageFormatException"
    assert c.list_faces(CollectionId="errors")["Faces"] == []
    c.delete_collection(CollectionId="errors")


def test_collections_outlive_the_server(tmp_path: Path, faces: dict[str, bytes]) -> None:
    for round_trip in range(2):
        services = Services.from_settings(Settings(data_dir=tmp_path, semantic=False))
        with live_app(services) as url:
            c = client(url)
            if round_trip == 0:
                c.create_collection(CollectionId="kept")
                c.index_faces(CollectionId="kept", Image={"Bytes": faces["obama"]})
            else:
                assert c.describe_collection(CollectionId="kept")["FaceCount"] == 1
                found = c.search_faces_by_image(
                    CollectionId="kept", Image={"Bytes": faces["obama3"]}
                )
                assert len(found["FaceMatches"]) == 1
        services.close()
    assert (tmp_path / "rekognition.sqlite3").is_file()


def test_changing_a_collection_needs_the_editor_role(tmp_path: Path) -> None:
    services = Services.from_settings(Settings(data_dir=tmp_path, semantic=False, auth="on"))
    with live_app(services) as url:
        viewer = sigv4_credentials(url, new_key(tmp_path, "viewer"))
        editor = sigv4_credentials(url, new_key(tmp_path, "editor"))
        as_viewer = client(url, viewer["AccessKeyId"], viewer["SecretAccessKey"])
        as_editor = client(url, editor["AccessKeyId"], editor["SecretAccessKey"])
        raw = RawAnswers(as_viewer)
        code, status, message = error(lambda: as_viewer.create_collection(CollectionId="team"))
        assert (code, status) == ("AccessDeniedException", 400) and "editor" in message
        raw.check_last()
        created = as_editor.create_collection(CollectionId="team")
        assert created["StatusCode"] == 200
        assert created["CollectionArn"].startswith("aws:rekognition:eu-west-1:")
        assert as_viewer.list_collections()["CollectionIds"] == ["team"]
        code, _, _ = error(lambda: as_viewer.delete_collection(CollectionId="team"))
        assert code == "AccessDeniedException"
        unsigned = client(url, "0123456789ab", "wrong")
        code, status, _ = error(lambda: unsigned.list_collections())
        assert (code, status) == ("UnrecognizedClientException", 403)
        assert as_editor.delete_collection(CollectionId="team")["StatusCode"] == 200
    services.close()


def stored_bytes(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in data_dir.glob("rekognition.sqlite3*"))


def test_deleted_faces_leave_no_descriptor_behind(
    rek: Any, server: Any, faces: dict[str, bytes]
) -> None:
    """The descriptor is never answered, but it is on disk until deleted, and then gone from the
    file and its write-ahead log (secure_delete and a checkpoint)."""
    c, _raw = rek
    picture = decode_image(faces["obama2"], draft_size=FACE_DECODE_SIZE).image
    engine = FaceEngine(Settings(recognition_threads=1))
    descriptor = engine.describe(picture, engine.detect(picture)[:1])[0]
    needle = np.asarray(descriptor, dtype="<f4").tobytes()[:64]
    c.create_collection(CollectionId="forget-me")
    (record,) = c.index_faces(CollectionId="forget-me", Image={"Bytes": faces["obama2"]})[
        "FaceRecords"
    ]
    assert needle in stored_bytes(server[2])
    c.delete_faces(CollectionId="forget-me", FaceIds=[record["Face"]["FaceId"]])
    assert needle not in stored_bytes(server[2])

    c.index_faces(CollectionId="forget-me", Image={"Bytes": faces["obama2"]})
    assert needle in stored_bytes(server[2])
    c.delete_collection(CollectionId="forget-me")
    assert needle not in stored_bytes(server[2])
