"""`imagedex people ...`, `imagedex search --person` and `/api/people` on a real data dir: the
real command in a subprocess, the real app on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli_helpers import cli_json, imagedex_env, run_cli
from imagedex.config import load_settings
from imagedex.people import manage
from imagedex.people.store import PeopleStore
from imagedex.services import Services
from live_app import live_app
from test_people_store import centre, document, face, near


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """Four images: Anna in each, Bob in the last three (people 1 and 2, unnamed)."""
    data = tmp_path / "data"
    services = Services.from_settings(load_settings(environ={}, data_dir=data))
    store = PeopleStore.in_data_dir(data)
    anna, bob = centre(), centre()
    for n in range(4):
        doc = document(f"img{n}", 2 if n else 1)
        vectors = [near(anna)] + ([near(bob)] if n else [])
        faces = [face(doc.id, i, v) for i, v in enumerate(vectors)]
        others = manage.record_faces(store, doc, faces)
        services.index.upsert([doc])
        manage.sync_documents(store, services.index, others)
    store.close()
    services.close()
    return data


def test_people_commands_and_search_by_person(data_dir: Path) -> None:
    env = imagedex_env(data_dir)
    listed = cli_json(env, "people", "list")["people"]
    assert [(p["id"], p["name"], p["faces"]) for p in listed] == [(1, "", 4), (2, "", 3)]
    assert "embedding" not in json.dumps(listed)
    run_cli(env, "people", "name", "1", "Anna")
    run_cli(env, "people", "name", "2", "Bob")
    found = cli_json(env, "search", "--person", "anna", "--person", "Bob")
    assert sorted(h["id"] for h in found["hits"]) == ["img1", "img2", "img3"]
    found = cli_json(env, "search", 'person:"Anna"')
    assert found["total"] == 4
    shown = cli_json(env, "people", "show", "Bob")
    assert sorted(f["id"] for f in shown["face_list"]) == ["img1", "img2", "img3"]
    assert "embedding" not in json.dumps(shown)

    typo = run_cli(env, "search", "--person", "Anan", check=False)
    assert typo.returncode == 2 and "no person 'Anan'" in typo.stderr
    assert "Traceback" not in typo.stderr
    missing = run_cli(env, "people", "show", "Carol", check=False)
    assert missing.returncode == 2 and "Traceback" not in missing.stdout + missing.stderr
    assert "no person 'Carol'" in missing.stdout + missing.stderr

    merged = cli_json(env, "people", "merge", "Anna", "Bob")
    assert (merged["id"], merged["faces"]) == (1, 7)
    gone = run_cli(env, "search", "person:2", check=False)  # merged away: nobody has id 2
    assert gone.returncode == 2 and "no person '2'" in gone.stderr
    assert cli_json(env, "search", "person:1")["total"] == 4

    refused = run_cli(env, "people", "forget", check=False)  # not typed: needs --yes
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert cli_json(env, "people", "forget", "--yes") == {"faces": 7, "people": 1, "documents": 4}
    assert cli_json(env, "people", "list")["people"] == []
    assert cli_json(env, "search", "img")["total"] == 4  # the images stay
    assert run_cli(env, "search", "person:1", check=False).returncode == 2


def face_vectors(answer: Any) -> list[Any]:
    """Every list of 128 numbers in an answer (a face embedding's shape)."""
    if isinstance(answer, dict):
        return [v for item in answer.values() for v in face_vectors(item)]
    if isinstance(answer, list):
        if len(answer) == 128 and all(isinstance(x, float | int) for x in answer):
            return [answer]
        return [v for item in answer for v in face_vectors(item)]
    return []


def test_people_api(data_dir: Path) -> None:
    services = Services.from_settings(load_settings(environ={}, data_dir=data_dir))
    try:
        with live_app(services) as url, httpx.Client(base_url=url) as http:
            listed = http.get("/api/people").json()
            assert (listed["total"], listed["faces"], listed["waiting"]) == (2, 7, 0)
            first = listed["people"][0]
            assert first["cover"]["thumbnail"].startswith("/api/images/")
            assert first["cover"]["bbox"] is not None
            renamed = http.patch("/api/people/1", json={"name": " Anna  Lee "})
            assert renamed.status_code == 200 and renamed.json()["name"] == "Anna Lee"
            assert http.patch("/api/people/1", json={"name": " "}).status_code == 422
            assert http.get("/api/people/nobody").status_code == 404
            person = http.get("/api/people/anna lee").json()
            assert len(person["face_list"]) == 4
            hits = http.get("/api/search", params={"q": 'person:"Anna Lee"'}).json()
            assert hits["total"] == 4
            image = http.get("/api/images/img1").json()
            assert [f.get("person_id") for f in image["faces"]] == [1, 2]
            for answer in (listed, person, image):
                assert not face_vectors(answer)
            hidden = http.patch("/api/people/2", json={"hidden": True}).json()
            assert hidden["hidden"] is True
            assert [p["id"] for p in http.get("/api/people").json()["people"]] == [1]
            merged = http.post("/api/people/1/merge", json={"other": "2"})
            assert merged.status_code == 200 and merged.json()["faces"] == 7
            assert http.post("/api/people/1/merge", json={"other": "1"}).status_code == 422
            assert http.post("/api/people/forget").json()["faces"] == 7
            assert http.get("/api/people").json()["total"] == 0
    finally:
        services.close()
