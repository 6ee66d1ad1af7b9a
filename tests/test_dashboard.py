"""Thumbnails, the dashboard's data and its CSV panels, through the HTTP API with a real SQLite
index and the local folder store."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from conftest import run_concurrently
from imagedex.api import create_app
from imagedex.dashboard import dashboard_data, panel_rows
from imagedex.documents import ImageDocument, Label, SearchQuery, document_id
from imagedex.services import Services
from imagedex.thumbnails import thumbnail, thumbnail_url, version_tag


def jpeg(size: tuple[int, int], colour: tuple[int, int, int], orientation: int = 1) -> bytes:
    image = Image.new("RGB", size, colour)
    image.paste((255, 255, 255), (0, 0, size[0] // 4, size[1] // 4))  # a mark in one corner
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90, exif=exif.tobytes())
    return buffer.getvalue()


def add_image(
    services: Services,
    key: str,
    data: bytes,
    labels: list[tuple[str, float]] = (),  # type: ignore[assignment]
    ingested_at: str = "2026-01-05T10:00:00Z",
    unsafe: float = 0.0,
) -> ImageDocument:
    info = services.store.put(key, data, content_type="image/jpeg")
    doc = ImageDocument(
        id=document_id(services.store.bucket, key),
        bucket=services.store.bucket,
        key=key,
        title=key.rsplit("/", 1)[-1],
        s3_location=services.store.location(key),
        etag=info.etag,
        size=info.size,
        content_type="image/jpeg",
        ingested_at=ingested_at,
        labels=[Label(name, conf, ("animal",)) for name, conf in labels],
        moderation=[{"label": "Suggestive", "confidence": unsafe, "parent": ""}] if unsafe else [],
    )
    services.index.upsert([doc])
    return doc


@pytest.fixture
def client(services: Services) -> TestClient:
    return TestClient(create_app(services), base_url="http://127.0.0.1")


# -- thumbnails ---------------------------------------------------------------------------------


def test_thumbnail_generated_once_upright_and_cached(
    services: Services, client: TestClient
) -> None:
    # stored 1200x800 with EXIF orientation 6 (rotate 90°): upright it is 800 wide, 1200 high
    doc = add_image(services, "photos/tall.jpg", jpeg((1200, 800), (200, 30, 30), orientation=6))
    first = client.get(f"/api/images/{doc.id}/thumbnail", params={"size": 320})
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "image/jpeg"
    shot = Image.open(io.BytesIO(first.content))
    assert shot.format == "JPEG" and shot.size == (213, 320)
    assert np.asarray(shot)[200, 100, 0] > 150  # the red body survived the resize

    (path,) = (services.settings.data_dir / "thumbnails" / doc.id[:2]).glob(f"{doc.id}-320-*.jpg")
    assert path.name == f"{doc.id}-320-{version_tag(doc.etag)}.jpg"
    made = path.stat().st_mtime_ns
    second = client.get(f"/api/images/{doc.id}/thumbnail", params={"size": 320})
    assert second.content == first.content
    assert path.stat().st_mtime_ns == made  # served from the cache, not generated again
    assert first.headers["cache-control"] == "private, max-age=60"  # unversioned URL

    bigger = client.get(f"/api/images/{doc.id}/thumbnail", params={"size": 640})
    assert Image.open(io.BytesIO(bigger.content)).size == (427, 640)
    default = client.get(f"/api/images/{doc.id}/thumbnail")  # settings.thumbnail_size
    assert default.content == first.content


def test_versioned_thumbnail_is_immutable_and_answers_304(
    services: Services, client: TestClient
) -> None:
    doc = add_image(services, "photos/a.jpg", jpeg((400, 300), (20, 200, 20)))
    url = thumbnail_url(doc.id, doc.etag, 160)
    assert url.endswith(f"&v={doc.etag[:8]}")
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "private, max-age=31536000, immutable"
    etag = response.headers["etag"]
    assert etag == f'"{doc.id}-160-{doc.etag[:8]}"'

    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    weak = client.get(url, headers={"If-None-Match": f'"other", W/{etag}'})
    assert weak.status_code == 304
    other = client.get(url, headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200 and other.content == response.content


def test_changed_object_gets_a_new_thumbnail(services: Services, client: TestClient) -> None:
    doc = add_image(services, "photos/c.jpg", jpeg((300, 300), (250, 10, 10)))
    old_url = thumbnail_url(doc.id, doc.etag, 160)
    red = client.get(old_url)
    services.store.put("photos/c.jpg", jpeg((300, 300), (10, 10, 250)), content_type="image/jpeg")
    new_etag = services.store.head("photos/c.jpg").etag
    assert version_tag(new_etag) != version_tag(doc.etag)

    blue = client.get(f"/api/images/{doc.id}/thumbnail", params={"size": 160})
    assert blue.headers["etag"] == f'"{doc.id}-160-{new_etag[:8]}"'
    pixel = np.asarray(Image.open(io.BytesIO(blue.content)))[120, 120]
    assert pixel[2] > 200 and pixel[0] < 60
    files = list((services.settings.data_dir / "thumbnails" / doc.id[:2]).glob(f"{doc.id}-160-*"))
    assert [f.name for f in files] == [f"{doc.id}-160-{new_etag[:8]}.jpg"]  # the old one is gone
    # the old versioned URL no longer names a file: it gets the current image, not cached forever
    stale = client.get(old_url)
    assert stale.content == blue.content and stale.content != red.content
    assert "immutable" not in stale.headers["cache-control"]


def test_thumbnail_errors(services: Services, client: TestClient) -> None:
    doc = add_image(services, "photos/ok.jpg", jpeg((100, 100), (1, 2, 3)))
    bad_size = client.get(f"/api/images/{doc.id}/thumbnail", params={"size": 333})
    assert bad_size.status_code == 422 and "160, 320, 640, 1280" in bad_size.json()["detail"]
    assert client.get("/api/images/nope/thumbnail").status_code == 404
    assert client.get(f"/api/images/{doc.id}/thumbnail", params={"v": "../../x"}).status_code == 422

    broken = add_image(services, "photos/broken.jpg", b"\xff\xd8\xff\xe0" + b"\x00garbage" * 40)
    response = client.get(f"/api/images/{broken.id}/thumbnail")
    assert response.status_code == 422
    assert "cannot make a thumbnail" in response.json()["detail"]
    assert "JPEG" in response.json()["detail"]

    text = add_image(services, "photos/notes.jpg", b"just some text, not a picture\n" * 5)
    detail = client.get(f"/api/images/{text.id}/thumbnail").json()["detail"]
    assert "not an image" in detail and "text" in detail
    assert not list((services.settings.data_dir / "thumbnails").rglob(f"{broken.id}*"))


def test_concurrent_requests_make_one_intact_thumbnail(services: Services) -> None:
    doc = add_image(services, "photos/busy.jpg", jpeg((2000, 1500), (90, 90, 200)))
    paths, errors = run_concurrently(lambda: thumbnail(services, doc.id, 640), 8)
    assert not errors and len(set(paths)) == 1
    with Image.open(paths[0]) as image:
        image.load()  # a torn write would fail to decode
        assert image.size == (640, 480)
    folder = paths[0].parent
    assert [p.name for p in folder.iterdir()] == [paths[0].name]  # no temporary files left


# -- dashboard ----------------------------------------------------------------------------------


@pytest.fixture
def collection(services: Services) -> list[ImageDocument]:
    """Seven images over three days: dogs, cats, one unsafe."""
    png = jpeg((32, 32), (100, 100, 100))
    specs = [
        ("a", [("dog", 95.0)], "2026-01-05T08:00:00Z", 0.0),
        ("b", [("dog", 72.0), ("ball", 40.0)], "2026-01-05T09:30:00Z", 0.0),
        ("c", [("dog", 55.0)], "2026-01-06T10:00:00Z", 80.0),
        ("d", [("cat", 91.0)], "2026-01-06T11:00:00Z", 0.0),
        ("e", [("cat", 15.0)], "2026-01-07T12:00:00Z", 0.0),
        ("f", [("ball", 99.5)], "2026-01-07T13:00:00Z", 0.0),
        ("g", [("dog", 88.0), ("cat", 60.0)], "2026-01-07T14:00:00Z", 10.0),
    ]
    return [
        add_image(services, f"photos/{name}.jpg", png, labels, when, unsafe)
        for name, labels, when, unsafe in specs
    ]


def test_dashboard_counts_match_the_collection(
    services: Services, client: TestClient, collection: list[ImageDocument]
) -> None:
    data = client.get("/api/dashboard").json()
    assert data["total"] == 7 and data["interval"] == "day"
    assert {c["label"]: c["count"] for c in data["top_labels"]} == {"dog": 4, "cat": 3, "ball": 2}
    assert data["top_labels"][0] == {"label": "dog", "count": 4}
    assert [(b["start"][:10], b["count"]) for b in data["over_time"]] == [
        ("2026-01-05", 2),
        ("2026-01-06", 2),
        ("2026-01-07", 3),
    ]
    assert data["moderation"]["safe"] == 6 and data["moderation"]["unsafe"] == 1
    assert data["moderation"]["labels"] == [{"label": "Suggestive", "count": 1}]
    # best label confidence per image: 95, 72, 55, 91, 15, 99.5, 88
    buckets = {b["low"]: b["count"] for b in data["confidence"]}
    assert sum(buckets.values()) == 7
    assert (buckets[90], buckets[80], buckets[70], buckets[50], buckets[10]) == (3, 1, 1, 1, 1)

    dogs = client.get("/api/dashboard", params={"label": "dog", "min_confidence": 70}).json()
    assert dogs["total"] == 3  # a, b, g
    assert {c["label"]: c["count"] for c in dogs["top_labels"]}["dog"] == 3
    window = client.get(
        "/api/dashboard",
        params={"date_from": "2026-01-06", "date_to": "2026-01-07", "interval": "hour"},
    ).json()
    assert window["total"] == 2 and sum(b["count"] for b in window["over_time"]) == 2
    unsafe = client.get("/api/dashboard", params={"moderation": "unsafe"}).json()
    assert unsafe["total"] == 1 and unsafe["top_labels"] == [{"label": "dog", "count": 1}]


def test_dashboard_query_syntax_filters_every_panel(
    client: TestClient, collection: list[ImageDocument]
) -> None:
    parsed = client.get("/api/dashboard", params={"q": "label:dog confidence>=70"}).json()
    explicit = client.get("/api/dashboard", params={"label": "dog", "min_confidence": 70}).json()
    for panel in ("total", "over_time", "top_labels", "confidence", "moderation"):
        assert parsed[panel] == explicit[panel]
    bad = client.get("/api/dashboard", params={"q": "confidence>=abc"})
    assert bad.status_code == 422 and bad.json()["detail"]


def test_dashboard_rejects_bad_filters(client: TestClient) -> None:
    assert client.get("/api/dashboard", params={"interval": "decade"}).status_code == 422
    bad_date = client.get("/api/dashboard", params={"date_from": "someday"})
    assert bad_date.status_code == 422 and "date_from" in bad_date.json()["detail"]
    assert client.get("/api/dashboard", params={"min_confidence": 101}).status_code == 422
    assert client.get("/api/dashboard/nothing.csv").status_code == 404
    for far in ({"date_to": "0001-01-01"}, {"q": "before:0001"}):  # was an OverflowError (500)
        assert client.get("/api/dashboard", params=far).status_code in (400, 422)
        assert client.get("/api/facets", params=far).status_code in (400, 422)


def test_ingest_panel_reports_queue_failures_and_throughput(services: Services) -> None:
    now = datetime(2026, 3, 1, 12, 30, 20, tzinfo=UTC)
    png = jpeg((16, 16), (1, 1, 1))
    for i, minutes_ago in enumerate([0.2, 1, 1, 5, 59, 61, 300]):
        when = (now - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
        add_image(services, f"recent/{i}.jpg", png, [("dog", 90.0)], when)
    services.queue.send("one")
    services.queue.send("two")
    services.queue.send("three")
    (message,) = services.queue.receive(1)
    services.queue.dead_letter(message.receipt, "ImageDecodeError: not an image (text)")

    ingest = dashboard_data(services, SearchQuery(), now=now)["ingest"]
    assert ingest["queue"] == {"visible": 2, "in_flight": 0, "dead": 1}
    assert ingest["dead_letters"] == 1
    assert ingest["recent_failures"][0]["error"] == "ImageDecodeError: not an image (text)"
    throughput = ingest["throughput"]
    per_minute = throughput["per_minute"]
    assert len(per_minute) == 60
    assert per_minute[0]["start"] == "2026-03-01T11:31:00Z"
    assert per_minute[-1]["start"] == "2026-03-01T12:30:00Z"
    # within the last 60 minutes: 0.2, 1, 1, 5 minutes ago (59 minutes ago is 11:31:20: in)
    assert throughput["last_hour"] == 5
    counts = {b["start"][11:16]: b["count"] for b in per_minute if b["count"]}
    assert counts == {"12:30": 1, "12:29": 2, "12:25": 1, "11:31": 1}
    assert throughput["per_minute_average"] == round(5 / 60, 2)


def test_csv_panels_parse_back_to_the_same_numbers(
    services: Services, client: TestClient, collection: list[ImageDocument]
) -> None:
    data = client.get("/api/dashboard", params={"label": "dog"}).json()
    for panel in ("over_time", "top_labels", "confidence", "moderation"):
        response = client.get(f"/api/dashboard/{panel}.csv", params={"label": "dog"})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        disposition = response.headers["content-disposition"]
        assert disposition.startswith("attachment;") and f"imagedex-{panel}-" in disposition
        rows = list(csv.reader(io.StringIO(response.text)))
        header, expected = panel_rows(data, panel)
        assert rows[0] == header
        assert rows[1:] == [[str(cell) for cell in row] for row in expected]
    top = list(csv.DictReader(io.StringIO(client.get("/api/dashboard/top_labels.csv").text)))
    assert {r["label"]: int(r["count"]) for r in top} == {"dog": 4, "cat": 3, "ball": 2}
    ingest = list(csv.reader(io.StringIO(client.get("/api/dashboard/ingest.csv").text)))
    assert ingest[0] == ["metric", "start", "value"]
    assert ["queue_visible", "", "0"] in ingest and len(ingest) == 1 + 3 + 1 + 60


def test_csv_cells_never_run_as_formulas(services: Services, client: TestClient) -> None:
    add_image(services, "photos/x.jpg", jpeg((8, 8), (0, 0, 0)), [("=HYPERLINK(1)", 90.0)])
    rows = list(csv.reader(io.StringIO(client.get("/api/dashboard/top_labels.csv").text)))
    assert rows[1][0] == "'=HYPERLINK(1)"


def test_dashboard_and_thumbnails_need_a_login_when_auth_is_on(services: Services) -> None:
    secured = Services.from_settings(services.settings.with_overrides(auth="on"))
    try:
        doc = add_image(secured, "photos/private.jpg", jpeg((64, 64), (5, 5, 5)))
        client = TestClient(create_app(secured), base_url="http://127.0.0.1")
        for path in (
            f"/api/images/{doc.id}/thumbnail",
            thumbnail_url(doc.id, doc.etag, 320),
            "/api/dashboard",
            "/api/dashboard/top_labels.csv",
        ):
            assert client.get(path).status_code == 401, path
    finally:
        secured.close()
