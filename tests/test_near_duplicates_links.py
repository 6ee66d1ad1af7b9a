"""An image's API document: near-duplicates both ways by id and title, and no server paths for
those who are not admins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_helpers import cli_json, imagedex_env
from conftest import ColourRecognizer, jpeg
from imagedex.ingest.worker import Worker
from test_access import Deployment


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    deployed = Deployment(tmp_path)
    yield deployed
    deployed.close()


def upload(deployment: Deployment, name: str, data: bytes) -> str:
    response = deployment.client.post(
        "/api/images",
        files={"file": (name, data, "image/jpeg")},
        headers=deployment.auth("editor"),
    )
    assert response.status_code == 202, response.text
    Worker(deployment.services, recognizers=[ColourRecognizer()]).run(once=True)
    doc_id: str = response.json()["id"]
    return doc_id


def shown(deployment: Deployment, doc_id: str, role: str = "viewer") -> dict[str, object]:
    response = deployment.client.get(f"/api/images/{doc_id}", headers=deployment.auth(role))
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()
    return data


def test_near_duplicates_are_shown_on_both_images_with_id_and_title(
    deployment: Deployment,
) -> None:
    from skimage import data

    cat = data.chelsea()
    original = upload(deployment, "chelsea.jpg", jpeg(cat, 92))
    copy = upload(deployment, "chelsea-small.jpg", jpeg(cat, 60, scale=0.6))
    other = upload(deployment, "coffee.jpg", jpeg(data.coffee(), 92))
    stored = deployment.services.index.get(original)
    assert stored is not None and stored.near_duplicates == []  # recorded on the newer only

    def link(doc_id: str, title: str) -> dict[str, str]:
        return {"id": doc_id, "title": title, "page": f"/images/{doc_id}"}

    assert shown(deployment, original)["near_duplicate_images"] == [link(copy, "chelsea-small.jpg")]
    assert shown(deployment, original)["near_duplicates"] == [copy]
    assert shown(deployment, copy)["near_duplicate_images"] == [link(original, "chelsea.jpg")]
    assert shown(deployment, other)["near_duplicate_images"] == []
    # the CLI's show --json says the same as the API, from either image
    env = imagedex_env(deployment.settings.data_dir)
    assert cli_json(env, "show", original)["near_duplicates"] == [copy]
    assert cli_json(env, "show", copy)["near_duplicate_images"] == [link(original, "chelsea.jpg")]

    deleted = deployment.client.delete(f"/api/images/{copy}", headers=deployment.auth("editor"))
    assert deleted.status_code == 200
    assert shown(deployment, original)["near_duplicate_images"] == []


def test_only_admins_see_where_the_server_keeps_the_file(deployment: Deployment) -> None:
    doc_id = deployment.upload((200, 30, 30))
    data_dir = str(deployment.settings.data_dir)
    for role in ("viewer", "editor"):
        response = deployment.client.get(f"/api/images/{doc_id}", headers=deployment.auth(role))
        doc = response.json()
        assert "s3_location" not in doc
        assert doc["bucket"] == "images" and doc["key"].endswith("/red.png")
        assert data_dir not in response.text and "file://" not in response.text
    admin = shown(deployment, doc_id, "admin")
    assert str(admin["s3_location"]).startswith("file://") and data_dir in str(admin["s3_location"])
