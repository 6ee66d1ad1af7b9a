import io

from fastapi.testclient import TestClient
from PIL import Image

from conftest import ColourRecognizer
from imagedex.api import create_app
from imagedex.ingest.worker import Worker
from imagedex.services import Services


def png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buf, "PNG")
    return buf.getvalue()


def test_upload_search_get_content_labels(services: Services) -> None:
    client = TestClient(create_app(services), base_url="http://127.0.0.1")
    assert client.get("/healthz").json()["status"] == "ok"
    response = client.post(
        "/api/images", files={"file": ("../../etc/red.png", png((255, 0, 0)), "image/png")}
    )
    assert response.status_code == 202, response.text
    uploaded = response.json()
    assert uploaded["key"].startswith("uploads/") and uploaded["key"].endswith("/red.png")
    Worker(services, recognizers=[ColourRecognizer()]).run(once=True)

    hits = client.get("/api/search", params={"label": "red", "min_confidence": 90}).json()
    assert hits["total"] == 1
    (hit,) = hits["hits"]
    assert hit["id"] == uploaded["id"] and hit["title"] == "red.png"
    assert hit["labels"][0] == {"label": "red", "confidence": 99.0, "parents": ["colour"]}
    assert (
        client.get("/api/search", params={"label": "red", "min_confidence": 99.5}).json()["total"]
        == 0
    )

    thumb = client.get(hit["thumbnail"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert "immutable" in thumb.headers["cache-control"]

    doc = client.get(f"/api/images/{uploaded['id']}").json()
    assert doc["width"] == 40 and doc["height"] == 30
    content = client.get(hit["url"])
    assert content.status_code == 200 and content.content == png((255, 0, 0))
    assert content.headers["content-type"] == "image/png"

    assert client.get("/api/labels").json() == {"labels": [{"label": "red", "count": 1}]}
    assert client.get("/healthz").json()["documents"] == 1


def test_api_errors_are_clear(services: Services) -> None:
    client = TestClient(create_app(services), base_url="http://127.0.0.1")
    assert client.get("/api/images/nope").status_code == 404
    assert client.get("/api/images/nope/content").status_code == 404
    bad = client.post("/api/images", files={"file": ("a.jpg", b"not an image", "image/jpeg")})
    assert bad.status_code == 415 and "not a supported image" in bad.json()["detail"]
    empty = client.post("/api/images", files={"file": ("a.jpg", b"", "image/jpeg")})
    assert empty.status_code == 400
    assert client.get("/api/search", params={"min_confidence": 101}).status_code == 422
    assert client.get("/api/search", params={"sort": "bogus"}).status_code == 422
    assert client.get("/api/search", params={"q": '" OR 1=1 --'}).json()["total"] == 0


def test_upload_size_limit(services: Services) -> None:
    small = Services.from_settings(services.settings.with_overrides(max_upload_bytes=100))
    client = TestClient(create_app(small), base_url="http://127.0.0.1")
    response = client.post("/api/images", files={"file": ("a.png", png((1, 2, 3)) * 10)})
    assert response.status_code == 413


def test_openapi_docs_served(services: Services) -> None:
    client = TestClient(create_app(services), base_url="http://127.0.0.1")
    spec = client.get("/openapi.json").json()
    assert {"/api/images", "/api/search", "/api/labels", "/healthz"} <= set(spec["paths"])
    assert client.get("/docs").status_code == 200


def test_rebound_host_names_are_refused_without_auth(services: Services) -> None:
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 must not read the local API."""
    client = TestClient(create_app(services), base_url="http://127.0.0.1")
    assert client.get("/api/search").status_code == 200
    for host in ("localhost:8000", "127.0.0.1:8000", "[::1]:8000", "app.localhost"):
        assert client.get("/api/search", headers={"host": host}).status_code == 200, host
    refused = client.get("/api/search", headers={"host": "evil.example:8000"})
    assert refused.status_code == 421 and "allowed_hosts" in refused.json()["detail"]
    allowed = create_app(
        Services.from_settings(
            services.settings.with_overrides(allowed_hosts="photos.lan", public_url="http://nas:80")
        )
    )
    lan = TestClient(allowed, base_url="http://127.0.0.1")
    assert lan.get("/api/search", headers={"host": "photos.lan"}).status_code == 200
    assert lan.get("/api/search", headers={"host": "nas"}).status_code == 200
    assert lan.get("/api/search", headers={"host": "evil.example"}).status_code == 421
