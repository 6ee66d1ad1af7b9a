""" "More like this" by how images look: the real pipeline, the real model, real photos.

The same photo under two names (`crop_11_horses.jpg`, `b12.jpg`) must be each other's nearest
neighbour whatever their titles say, and renaming an image must not change its neighbours.
"""

from __future__ import annotations

import dataclasses
import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from cli_helpers import cli_json, imagedex_env, run_cli
from conftest import make_document
from imagedex.api import create_app
from imagedex.config import load_settings
from imagedex.documents import SearchQuery
from imagedex.errors import ConfigError
from imagedex.recognition.imagenet import ImageNetLabeller
from imagedex.search import with_vector
from imagedex.services import Services

#: The puppy photo three times: twice byte for byte, once smaller and re-encoded.
COPIES = ("crop_11_horses.jpg", "b12.jpg", "IMG_2040.jpg")
#: Other photos, one of them (the espresso) named after what another title claims.
OTHERS = ("chelsea.jpg", "gold_fish.jpg", "china.jpg", "tent.jpg", "guitar.jpg", "horses.jpg")


def _reencoded(jpeg: bytes, scale: float, quality: int) -> bytes:
    image = Image.open(io.BytesIO(jpeg)).convert("RGB")
    image = image.resize((round(image.width * scale), round(image.height * scale)))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def collection(photo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Ingested through the real CLI: the worker, ImageNet (labels and visual embedding) and
    the MiniLM text embedding."""
    root = tmp_path_factory.mktemp("visual")
    folder = root / "photos"
    folder.mkdir()
    puppy = (photo_dir / "puppy.jpg").read_bytes()
    (folder / "crop_11_horses.jpg").write_bytes(puppy)
    (folder / "b12.jpg").write_bytes(puppy)
    (folder / "IMG_2040.jpg").write_bytes(_reencoded(puppy, 0.6, 70))
    for name in OTHERS:
        source = "coffee.jpg" if name == "horses.jpg" else name
        shutil.copy(photo_dir / source, folder / name)
    env = imagedex_env(root / "data", IMAGEDEX_RECOGNIZERS="imagenet", IMAGEDEX_SEMANTIC="true")
    outcome = cli_json(env, "ingest", str(folder), "--wait")
    assert outcome["indexed"] == len(COPIES) + len(OTHERS) and outcome["failed"] == 0
    return {"env": env, "folder": folder, "data": root / "data"}


def _shown(env: dict[str, str], title: str) -> dict[str, Any]:
    shown: dict[str, Any] = cli_json(env, "show", title)
    return shown


def _like(env: dict[str, str], doc_id: str, *args: str) -> list[str]:
    answer = cli_json(env, "search", "--like", doc_id, "--limit", "20", *args)
    return [hit["title"] for hit in answer["hits"]]


def test_every_image_has_a_unit_visual_embedding(collection: dict[str, Any]) -> None:
    shown = _shown(collection["env"], "crop_11_horses.jpg")
    visual = np.asarray(shown["visual_embedding"])
    assert visual.shape == (1280,) and abs(float(np.linalg.norm(visual)) - 1.0) < 1e-4
    assert len(shown["embedding"]) == 384  # the text embedding is still there, apart
    assert shown["analyzed_with"]["imagenet"] == ImageNetLabeller.version


def test_the_same_photo_under_two_names_are_each_others_nearest(
    collection: dict[str, Any],
) -> None:
    env = collection["env"]
    horses, b12 = _shown(env, "crop_11_horses.jpg"), _shown(env, "b12.jpg")
    from_horses = _like(env, horses["id"])
    from_b12 = _like(env, b12["id"])
    assert from_horses[0] == "b12.jpg" and from_b12[0] == "crop_11_horses.jpg"
    # the smaller re-encoded copy comes next, before any other photo
    assert from_horses[1] == "IMG_2040.jpg" and from_b12[1] == "IMG_2040.jpg"
    from_copy = _like(env, _shown(env, "IMG_2040.jpg")["id"])
    assert set(from_copy[:2]) == {"crop_11_horses.jpg", "b12.jpg"}
    # a different photo ranks lower, even one whose name says "horses"
    assert from_horses.index("horses.jpg") > 1
    assert "crop_11_horses.jpg" not in from_horses  # the example itself is left out
    # both names see the same neighbours beyond the copies
    assert [t for t in from_horses if t not in COPIES] == [t for t in from_b12 if t not in COPIES]


def test_renaming_an_image_keeps_its_neighbours(collection: dict[str, Any], tmp_path: Path) -> None:
    env = collection["env"]
    before = _shown(env, "b12.jpg")
    neighbours = _like(env, before["id"])
    # the same object (photos/b12.jpg) uploaded again under a new title: analysed again
    again = tmp_path / "photos"
    again.mkdir()
    shutil.copy(collection["folder"] / "b12.jpg", again / "b12.jpg")
    run_cli(env, "ingest", str(again), "--title", "Kitchen counter")
    # (not --wait: it counts the unchanged bytes as indexed before the new title is applied)
    run_cli(env, "worker", "--once")
    after = _shown(env, before["id"])
    assert after["title"] == "Kitchen counter" and after["key"] == before["key"]
    assert after["embedding"] != before["embedding"]  # what the old "more like this" compared
    np.testing.assert_allclose(after["visual_embedding"], before["visual_embedding"], atol=1e-5)
    assert _like(env, after["id"]) == neighbours
    from_horses = _like(env, _shown(env, "crop_11_horses.jpg")["id"])
    assert from_horses[0] == "Kitchen counter"


def test_filters_still_apply(collection: dict[str, Any]) -> None:
    env = collection["env"]
    horses = _shown(env, "crop_11_horses.jpg")
    dogs = _like(env, horses["id"], "--label", "dog")
    assert dogs and set(dogs) <= {"b12.jpg", "Kitchen counter", "IMG_2040.jpg"}
    assert _like(env, horses["id"], "--label", "espresso") == ["horses.jpg"]


@pytest.fixture
def api_services(collection: dict[str, Any]) -> Iterator[Services]:
    settings = load_settings(environ={}, data_dir=collection["data"], recognizers="imagenet")
    services = Services.from_settings(settings)
    yield services
    services.close()


def test_the_api_and_the_image_page_use_the_visual_neighbours(
    collection: dict[str, Any], api_services: Services
) -> None:
    env = collection["env"]
    horses = _shown(env, "crop_11_horses.jpg")
    client = TestClient(create_app(api_services), base_url="http://127.0.0.1")
    # the image page's "More like this" asks for 6; the search page passes like= as well
    answer = client.get("/api/search", params={"like": horses["id"], "limit": 6})
    assert answer.status_code == 200, answer.text
    titles = [hit["title"] for hit in answer.json()["hits"]]
    assert titles == _like(env, horses["id"])[:6]
    assert "visual_embedding" not in answer.json()["hits"][0]  # hits carry no vectors


def test_images_not_yet_reprocessed_fall_back_to_the_text_embedding(
    api_services: Services,
) -> None:
    index = api_services.index
    example = index.find_by_title("crop_11_horses.jpg")[0]
    assert example.visual_embedding and example.embedding
    query = with_vector(api_services, SearchQuery(), like=example.id)
    assert query.vector_field == "visual_embedding" and query.exclude_id == example.id
    older = dataclasses.replace(
        example, id="older", key="older.jpg", title="older.jpg", visual_embedding=None
    )
    index.upsert([older])
    try:
        fallback = with_vector(api_services, SearchQuery(), like="older")
        assert fallback.vector_field == "embedding"
        assert fallback.vector == tuple(example.embedding)
        found = [d.id for d in index.search(fallback).documents]
        assert found and "older" not in found
        index.upsert([make_document("bare.jpg")])
        bare = index.find_by_title("bare.jpg")[0]
        with pytest.raises(ConfigError, match="reprocess"):
            with_vector(api_services, SearchQuery(), like=bare.id)
    finally:
        index.delete("older")
