"""Deleting images: `imagedex delete`, `DELETE /api/images/{id}`, and what a crash or a late
event can and cannot bring back. The embedded backends here; S3 and the search engines in
test_delete_backends.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cli_helpers import imagedex_env, run_cli
from conftest import ColourRecognizer, png
from imagedex.config import Settings
from imagedex.documents import SearchQuery
from imagedex.ingest.events import make_notification
from imagedex.ingest.upload import upload_bytes
from imagedex.ingest.worker import Worker
from imagedex.services import Services
from imagedex.thumbnails import thumbnail
from test_access import Deployment

RED, GREEN, BLUE = (250, 10, 10), (10, 250, 10), (10, 10, 250)


def index_images(services: Services, images: dict[str, tuple[tuple[int, int, int], str]]) -> None:
    """Upload `key: (colour, title)` and let the worker index them; a thumbnail of each."""
    for key, (colour, title) in images.items():
        upload_bytes(services, key, png(colour), title=title)
    stats = Worker(services, recognizers=[ColourRecognizer()]).run(once=True)
    assert stats.indexed == len(images)
    for key in images:
        (doc,) = [d for d in services.index.iter_documents() if d.key == key]
        thumbnail(services, doc.id, 160)
        thumbnail(services, doc.id, 320)


def thumbnails_of(settings: Settings, doc_id: str) -> list[Path]:
    return sorted((settings.data_dir / "thumbnails").rglob(f"{doc_id}-*"))


def stored(services: Services, key: str) -> bool:
    return (services.settings.data_dir / "images" / key).is_file()


@pytest.fixture
def collection(services: Services) -> Services:
    index_images(
        services,
        {
            "trip/red.png": (RED, "red.png"),
            "trip/green.png": (GREEN, "green.png"),
            "a/blue.png": (BLUE, "blue.png"),
            "b/blue.png": (BLUE, "blue.png"),  # the same title twice
        },
    )
    return services


def doc_for(services: Services, key: str) -> str:
    return next(d.id for d in services.index.iter_documents() if d.key == key)


def test_cli_deletes_by_key_title_or_id_everywhere_it_lives(collection: Services) -> None:
    services, settings = collection, collection.settings
    env = imagedex_env(settings.data_dir)
    red, green = doc_for(services, "trip/red.png"), doc_for(services, "trip/green.png")
    assert len(thumbnails_of(settings, red)) == 2 and stored(services, "trip/red.png")

    proc = run_cli(env, "delete", "trip/red.png", "green.png", red, "--yes", "--json")
    deleted = json.loads(proc.stdout)["deleted"]
    # the key and the id name one image: deleted once
    assert [(d["id"], d["key"], d["title"]) for d in deleted] == [
        (red, "trip/red.png", "red.png"),
        (green, "trip/green.png", "green.png"),
    ]
    assert all(d["document"] and d["object"] and d["thumbnails"] == 2 for d in deleted)
    for doc_id, key in ((red, "trip/red.png"), (green, "trip/green.png")):
        assert services.index.get(doc_id) is None
        assert not stored(services, key)
        assert thumbnails_of(settings, doc_id) == []
    assert services.index.search(SearchQuery(labels=("red",))).total == 0
    assert services.index.count() == 2  # the blue ones stay

    said = run_cli(env, "delete", "a/blue.png", "--yes")
    assert "deleted blue.png (a/blue.png, id " in said.stderr
    assert services.index.count() == 1


def test_cli_deletes_nothing_unless_every_image_is_named_clearly(collection: Services) -> None:
    services, env = collection, imagedex_env(collection.settings.data_dir)

    unknown = run_cli(env, "delete", "trip/red.png", "nope.png", "--yes", check=False)
    assert unknown.returncode == 1
    assert "no image has the id, key or title 'nope.png'; nothing was deleted" in unknown.stderr
    assert "Traceback" not in unknown.stderr

    ambiguous = run_cli(env, "delete", "blue.png", "--yes", check=False)
    assert ambiguous.returncode == 1
    assert "2 images have the title 'blue.png'" in ambiguous.stderr
    for key in ("a/blue.png", "b/blue.png"):
        assert doc_for(services, key) in ambiguous.stderr

    unconfirmed = run_cli(env, "delete", "trip/red.png", check=False)
    assert unconfirmed.returncode == 2 and "needs --yes" in unconfirmed.stderr

    escaping = run_cli(env, "delete", "../secret.png", "--yes", check=False)
    assert escaping.returncode == 1 and "no image has the id, key or title" in escaping.stderr

    assert services.index.count() == 4
    assert all(stored(services, k) for k in ("trip/red.png", "a/blue.png", "b/blue.png"))
    assert "--yes" in run_cli(env, "delete", "--help").stdout


def test_a_deletion_that_stopped_half_way_is_finished_by_key(collection: Services) -> None:
    services, settings = collection, collection.settings
    red = doc_for(services, "trip/red.png")
    services.index.delete(red)  # the crash: the document is gone, the object and thumbnails not
    env = imagedex_env(settings.data_dir)
    (deleted,) = json.loads(run_cli(env, "delete", "trip/red.png", "--yes", "--json").stdout)[
        "deleted"
    ]
    assert deleted == {
        "id": red,
        "key": "trip/red.png",
        "title": "",
        "document": False,
        "object": True,
        "thumbnails": 2,
    }
    assert not stored(services, "trip/red.png") and thumbnails_of(settings, red) == []


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    deployed = Deployment(tmp_path)
    yield deployed
    deployed.close()


def test_api_delete_needs_an_editor_and_leaves_nothing_to_open(deployment: Deployment) -> None:
    client, services = deployment.client, deployment.services
    doc_id = deployment.upload(RED)
    doc = services.index.get(doc_id)
    assert doc is not None
    thumb = client.get(
        f"/api/images/{doc_id}/thumbnail?size=320", headers=deployment.auth("viewer")
    )
    assert thumb.status_code == 200 and thumbnails_of(deployment.settings, doc_id)

    refused = client.delete(f"/api/images/{doc_id}", headers=deployment.auth("viewer"))
    assert refused.status_code == 403 and "needs the editor role" in refused.json()["detail"]
    assert services.index.get(doc_id) is not None

    response = client.delete(f"/api/images/{doc_id}", headers=deployment.auth("editor"))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": doc_id,
        "key": doc.key,
        "title": "red.png",
        "document": True,
        "object": True,
        "thumbnails": 1,
    }
    viewer = deployment.auth("viewer")
    for path in ("", "/content", "/thumbnail?size=320"):
        assert client.get(f"/api/images/{doc_id}{path}", headers=viewer).status_code == 404
    assert not stored(services, doc.key) and thumbnails_of(deployment.settings, doc_id) == []
    again = client.delete(f"/api/images/{doc_id}", headers=deployment.auth("editor"))
    assert again.status_code == 404 and "already deleted?" in again.json()["detail"]


def test_a_late_or_racing_ingest_event_does_not_bring_a_deleted_image_back(
    services: Services,
) -> None:
    from imagedex.ingest.delete import delete_document

    upload = upload_bytes(services, "cat.png", png(RED))
    worker = Worker(services, recognizers=[ColourRecognizer()])
    worker.run(once=True)
    stale_event = json.dumps(make_notification("created", services.store.bucket, "cat.png"))
    assert services.queue.stats().visible == 0

    # a new version is written (as S3 would, with its event); a worker fetches it, and the
    # image is deleted meanwhile
    info = services.store.put("cat.png", png(GREEN), "image/png")
    bucket = services.store.bucket
    services.queue.send(json.dumps(make_notification("created", bucket, "cat.png", info.size)))
    (message,) = services.queue.receive(visibility_timeout=60)
    pipeline = worker.pipeline
    prepared = pipeline.prepare(message)
    doc = services.index.get(upload.doc_id)
    assert doc is not None
    delete_document(services, doc)
    (outcome,) = pipeline.complete([prepared])  # the racing worker writes what it fetched
    services.queue.delete([message.receipt])
    assert outcome.indexed == 1 and services.index.get(upload.doc_id) is not None

    # the removed event the deletion queued takes it out again; a replayed created event
    # finds no object and removes, never indexes
    services.queue.send(stale_event)
    stats = Worker(services, recognizers=[ColourRecognizer()]).run(once=True)
    assert (stats.messages, stats.removed, stats.indexed, stats.dead_lettered) == (2, 2, 0, 0)
    assert services.index.get(upload.doc_id) is None
    assert services.index.search(SearchQuery()).total == 0
    assert services.queue.stats().visible == 0


def test_the_delete_route_is_in_the_api_description(services: Services) -> None:
    from imagedex.api import create_app

    spec = TestClient(create_app(services), base_url="http://127.0.0.1").get("/openapi.json")
    assert "delete" in spec.json()["paths"]["/api/images/{doc_id}"]
