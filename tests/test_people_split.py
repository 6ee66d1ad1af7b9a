"""Splitting a wrongly grouped face off its person (issue 15): in the store and the clustering
(the face is never pulled back, not by a new image nor by reprocessing its own), with
`imagedex people split` in a subprocess and `/api/people/{id}/faces/{face}/split` on the real
app."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

from cli_helpers import cli_json, imagedex_env, run_cli
from imagedex.config import load_settings
from imagedex.index import open_index
from imagedex.index.base import SearchIndex
from imagedex.people import manage
from imagedex.people.store import PeopleStore
from imagedex.services import Services
from live_app import live_app
from test_people_store import centre, document, face, near

ANNA, BOB = centre(), centre()


def record(store: PeopleStore, index: SearchIndex, doc_id: str, vectors: list[np.ndarray]) -> None:
    doc = document(doc_id, len(vectors))
    others = manage.record_faces(store, doc, [face(doc_id, i, v) for i, v in enumerate(vectors)])
    index.upsert([doc])
    manage.sync_documents(store, index, others)


def people_of(index: SearchIndex, doc_id: str) -> list[int | None]:
    doc = index.get(doc_id)
    assert doc is not None
    return [f.get("person_id") for f in doc.faces]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """Anna in a0..a3 (person 1), Bob in b0..b2 (person 2); a3's face is Anna's odd one out."""
    data = tmp_path / "data"
    store = PeopleStore.in_data_dir(data)
    index = open_index("sqlite", data)
    for n in range(4):
        record(store, index, f"a{n}", [near(ANNA)])
    for n in range(3):
        record(store, index, f"b{n}", [near(BOB)])
    assert [(p.id, p.faces) for p in store.people()] == [(1, 4), (2, 3)]
    store.close()
    index.close()
    return data


def test_a_split_face_is_not_pulled_back_by_a_new_image_or_a_reprocess(data_dir: Path) -> None:
    store = PeopleStore.in_data_dir(data_dir)
    index = open_index("sqlite", data_dir)
    (odd,) = [f for f in store.faces_of(1) if f.doc == "a3"]
    vector = store.embeddings(store._db())[2][odd.id - 1].copy()

    done = manage.split(store, index, odd.id)
    assert (done["from"], done["to"]) == (1, None)
    assert people_of(index, "a3") == [None]
    # a new face of Anna joins her; her waiting neighbours are placed again: not this one
    record(store, index, "a4", [near(ANNA)])
    assert store.document_people("a4") == {0: 1}
    assert store.document_people("a3") == {0: None}
    # reprocessing a3 (its face gets a new row) keeps it off Anna too
    record(store, index, "a3", [vector])
    assert store.document_people("a3") == {0: None}
    assert store.get(1).faces == 4  # type: ignore[union-attr]

    # moved to Bob, it stays Bob's across a reprocess, though it looks like Anna
    (waiting,) = store.faces_of_document("a3")
    bob = store.get(2)
    assert manage.split(store, index, waiting.id, to=bob)["to"] == 2
    assert people_of(index, "a3") == [2]
    record(store, index, "a3", [vector])
    assert store.document_people("a3") == {0: 2}

    # to a new person of its own: an id no one had, and Anna's other faces stay hers
    (moved,) = store.faces_of_document("a3")
    new = manage.split(store, index, moved.id, new=True)["to"]
    assert new not in (1, 2) and people_of(index, "a3") == [new]
    assert [f.doc for f in store.faces_of(1)] and all(f.doc != "a3" for f in store.faces_of(1))
    store.close()
    index.close()


def test_split_in_the_cli(data_dir: Path) -> None:
    env = imagedex_env(data_dir)
    listed = cli_json(env, "people", "list")["people"]
    assert [(p["id"], p["faces"], p["images"]) for p in listed] == [(1, 4, 4), (2, 3, 3)]
    table = run_cli(env, "people", "list").stdout
    assert "images" in table
    shown = cli_json(env, "people", "show", "1")["face_list"]
    face_id = next(f["face_id"] for f in shown if f["id"] == "a3")
    assert f"face {face_id}: image a3 face 0" in run_cli(env, "people", "show", "1").stdout

    moved = cli_json(env, "people", "split", str(face_id), "--to", "2")
    assert (moved["from"], moved["to"], moved["id"]) == (1, 2, "a3")
    assert [h["id"] for h in cli_json(env, "search", "person:2")["hits"]].count("a3") == 1
    assert "a3" not in [h["id"] for h in cli_json(env, "search", "person:1")["hits"]]
    out = run_cli(env, "people", "split", str(face_id))
    assert f"face {face_id} moved from person 2 to nobody" in out.stdout + out.stderr

    for args, message in [
        (["999"], "no face 999"),
        ([str(face_id)], "belongs to no person"),
        ([str(face_id), "--to", "1", "--new"], "not both"),
        ([str(face_id), "--to", "Carol"], "no person 'Carol'"),
        (["x"], "FACE_ID"),
    ]:
        failed = run_cli(env, "people", "split", *args, check=False)
        said = failed.stdout + failed.stderr
        assert failed.returncode == 2 and message in said and "Traceback" not in said, args
    assert "--new" in run_cli(env, "people", "split", "--help").stdout


def test_split_in_the_api(data_dir: Path) -> None:
    services = Services.from_settings(load_settings(environ={}, data_dir=data_dir))
    try:
        with live_app(services) as url, httpx.Client(base_url=url) as http:
            person = http.get("/api/people/1").json()
            faces = {f["id"]: f for f in person["face_list"]}
            assert faces["a3"]["thumbnail"].startswith("/api/images/a3/thumbnail")
            face_id = faces["a3"]["face_id"]
            path = f"/api/people/1/faces/{face_id}/split"
            both = http.post(path, json={"to": "2", "new": True})
            assert both.status_code == 422
            assert http.post(f"/api/people/2/faces/{face_id}/split", json={}).status_code == 409
            assert http.post("/api/people/1/faces/999/split", json={}).status_code == 404
            done = http.post(path, json={})
            assert done.status_code == 200 and done.json()["to"] is None
            assert http.post(path, json={}).status_code == 409  # not person 1's any more
            assert [f["id"] for f in http.get("/api/people/1").json()["face_list"]].count("a3") == 0
            new = http.post(f"/api/people/2/faces/{faces['a0']['face_id']}/split", json={})
            assert new.status_code == 409  # a0's face is Anna's, not Bob's
            image = http.get("/api/images/a3").json()
            assert [f.get("person_id") for f in image["faces"]] == [None]
    finally:
        services.close()
