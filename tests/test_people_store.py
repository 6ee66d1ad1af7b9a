"""The people store, the clustering rule, person search on the SQLite index, and forget.

The clustering rule is checked on points placed at known distances (what the rule reads is
only the distances between embeddings); the embeddings of real face photos come in through
the faces analyzer's tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imagedex.documents import ImageDocument, SearchQuery
from imagedex.errors import ConfigError, QuerySyntaxError
from imagedex.index import open_index
from imagedex.index.query_syntax import parse_query
from imagedex.people import manage
from imagedex.people.clustering import Rule, place_faces
from imagedex.people.store import FILE_NAME, NewFace, PeopleStore

RNG = np.random.default_rng(15)


def centre() -> np.ndarray:
    """A point about 1.0 from any other centre (dlib: different people are 0.7-1.0 apart)."""
    v = RNG.normal(size=128)
    return v / np.linalg.norm(v) * 0.72


def near(c: np.ndarray, spread: float = 0.25) -> np.ndarray:
    """A face of the person at `c`: within `spread` of it (same person: under ~0.5)."""
    offset = RNG.normal(size=128)
    return (c + offset / np.linalg.norm(offset) * spread * RNG.uniform(0.3, 1.0)).astype(np.float32)


def face(doc: str, i: int, vector: np.ndarray) -> NewFace:
    box = {"left": 0.1 * i, "top": 0.1, "width": 0.1, "height": 0.1}
    return NewFace(doc, i, box, 90.0, vector)


def document(doc_id: str, faces: int) -> ImageDocument:
    return ImageDocument(
        id=doc_id,
        bucket="b",
        key=f"{doc_id}.jpg",
        title=f"{doc_id}.jpg",
        s3_location=f"s3://b/{doc_id}.jpg",
        ingested_at="2026-01-01T00:00:00Z",
        faces=[{"bbox": {"left": 0.1 * i}, "confidence": 90.0} for i in range(faces)],
    )


@pytest.fixture
def store(tmp_path: Path) -> PeopleStore:
    return PeopleStore.in_data_dir(tmp_path)


def test_waiting_faces_form_a_person_at_min_faces_then_new_faces_join(store: PeopleStore) -> None:
    anna, bob = centre(), centre()
    with store.transaction() as db:
        first = store.replace_faces(db, "d1", [face("d1", 0, near(anna)), face("d1", 1, near(bob))])
        assert place_faces(store, db, first) == set()  # one face each: both wait
        second = store.replace_faces(db, "d2", [face("d2", 0, near(anna))])
        assert place_faces(store, db, second) == set()  # two alike faces: still waiting
        third = store.replace_faces(db, "d3", [face("d3", 0, near(anna))])
        (person,) = place_faces(store, db, third)  # the third forms a person of all three
        fourth = store.replace_faces(
            db, "d4", [face("d4", 0, near(anna)), face("d4", 1, near(bob))]
        )
        assert place_faces(store, db, fourth) == {person}  # joins; Bob's second face waits
    assert [(p.id, p.faces) for p in store.people()] == [(person, 4)]
    assert store.counts() == (6, 2, 1)
    assert store.document_people("d4") == {0: person, 1: None}


def test_a_stranger_close_to_one_face_of_a_person_does_not_join(store: PeopleStore) -> None:
    anna = centre()
    u = RNG.normal(size=128)
    u /= np.linalg.norm(u)
    tight = [near(anna, 0.05) for _ in range(3)]
    edge = (anna + 0.4 * u).astype(np.float32)  # Anna too, at the edge of her faces
    stranger = (anna + 0.85 * u).astype(np.float32)  # 0.45 from the edge face, ~0.85 from the rest
    with store.transaction() as db:
        ids = store.replace_faces(db, "d", [face("d", i, v) for i, v in enumerate([*tight, edge])])
        (person,) = place_faces(store, db, ids)
        new = store.replace_faces(db, "s", [face("s", 0, stranger)])
        distances = np.linalg.norm(store.embeddings(db)[2][:4] - stranger, axis=1)
        assert (distances <= 0.5).sum() == 1, distances
        assert place_faces(store, db, new) == set()
    assert store.document_people("s") == {0: None}
    anna_now = store.get(person)
    assert anna_now is not None and anna_now.faces == 4


def test_clustering_purity_on_twenty_people(store: PeopleStore) -> None:
    """20 people, 6 faces each, in a shuffled order: every person found, none mixed."""
    centres = [centre() for _ in range(20)]
    faces = [(p, near(c)) for p, c in enumerate(centres) for _ in range(6)]
    order = RNG.permutation(len(faces))
    truth: dict[int, int] = {}
    with store.transaction() as db:
        for n, k in enumerate(order):
            who, vector = faces[int(k)]
            (row,) = store.replace_faces(db, f"doc{n}", [face(f"doc{n}", 0, vector)])
            truth[row] = who
            place_faces(store, db, [row])
        ids, people, _ = store.embeddings(db)
    clusters: dict[int, set[int]] = {}
    for row, person in zip(ids.tolist(), people.tolist(), strict=True):
        assert person >= 0, "every face of a person with 6 faces is placed"
        clusters.setdefault(person, set()).add(truth[row])
    assert all(len(who) == 1 for who in clusters.values())  # pure
    assert len(clusters) == 20


def test_rule_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="max_distance"):
        Rule(max_distance=0)
    with pytest.raises(ValueError, match="min_faces"):
        Rule(min_faces=0)


def test_embeddings_must_be_128_finite_numbers(store: PeopleStore) -> None:
    with store.transaction() as db, pytest.raises(ValueError, match="128 finite"):
        store.replace_faces(db, "d", [face("d", 0, np.full(128, np.nan, dtype=np.float32))])
    with store.transaction() as db, pytest.raises(ValueError, match="128 finite"):
        store.replace_faces(db, "d", [face("d", 0, np.zeros(64, dtype=np.float32))])


def test_person_search_rename_merge_and_forget_on_the_sqlite_index(tmp_path: Path) -> None:
    store = PeopleStore.in_data_dir(tmp_path)
    index = open_index("sqlite", tmp_path)
    anna, bob = centre(), centre()
    docs = []
    for n in range(4):  # each shows Anna; the last three Bob too
        doc = document(f"img{n}", 2 if n else 1)
        vectors = [near(anna)] + ([near(bob)] if n else [])
        others = manage.record_faces(
            store, doc, [face(doc.id, i, v) for i, v in enumerate(vectors)]
        )
        index.upsert([doc])
        manage.sync_documents(store, index, others)
        docs.append(doc)
    people = store.people()
    assert [p.faces for p in people] == [4, 3]
    anna_id, bob_id = people[0].id, people[1].id
    store.rename(anna_id, manage.clean_name("  Anna   Lee "))

    def found(text: str) -> list[str]:
        return sorted(d.id for d in index.search(parse_query(text)).documents)

    assert found('person:"anna lee"') == ["img0", "img1", "img2", "img3"]
    assert found(f'person:"Anna Lee" person:{bob_id}') == ["img1", "img2", "img3"]
    assert found("person:Nobody") == []
    assert index.get("img0").faces[0]["person_id"] == anna_id  # type: ignore[union-attr]
    facets = index.facets(SearchQuery(people=(str(bob_id),)))
    assert facets.total == 3

    merged = manage.merge(store, index, manage.resolve(store, "anna lee"), store.get(bob_id))  # type: ignore[arg-type]
    assert merged.faces == 7 and merged.name == "Anna Lee"
    assert found(f"person:{bob_id}") == []
    assert index.get("img3").faces[1]["person_id"] == anna_id  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="no person 'Bob'"):
        manage.resolve(store, "Bob")

    blob = store.embeddings(store._database.connection())[2][0].tobytes()
    assert manage.forget(store, index) == {"faces": 7, "people": 1, "documents": 4}
    assert store.people() == [] and store.counts() == (0, 0, 0)
    assert found('person:"Anna Lee"') == [] and found(f"person:{anna_id}") == []
    assert all("person_id" not in f for d in index.iter_documents() for f in d.faces)
    files = [p for p in tmp_path.iterdir() if p.name.startswith(FILE_NAME)]
    assert files and all(blob not in p.read_bytes() for p in files)  # nothing left on disk


def test_person_syntax() -> None:
    query = parse_query('person:"Anna Lee" PERSON:12 beach')
    assert query.people == ("Anna Lee", "12") and query.text == "beach"
    with pytest.raises(QuerySyntaxError, match='person:Anna or person:"Anna Lee"'):
        parse_query("person:")


def test_names_are_cleaned_and_checked() -> None:
    assert manage.clean_name(" Anna\tLee ") == "Anna Lee"
    for bad in ("", "   ", "x" * 101, "Anna\x00"):
        with pytest.raises(ConfigError):
            manage.clean_name(bad)


def test_an_id_too_big_for_sqlite_names_nobody(tmp_path: Path) -> None:
    store = PeopleStore.in_data_dir(tmp_path)
    assert store.find("9" * 40) == []
    index = open_index("sqlite", tmp_path)
    assert index.search(SearchQuery(people=("9" * 40,))).total == 0
