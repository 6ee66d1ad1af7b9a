"""Person search on real OpenSearch and Elasticsearch nodes (deploy/opensearch.sh,
deploy/elasticsearch.sh): faces nested with person ids, `person:` by id and by name through the
data dir's people store, the same answers as SQLite, and an index made before mapping version 2
told to migrate (then migrated)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagedex.documents import ImageDocument, SearchQuery
from imagedex.errors import ConfigError
from imagedex.index import SearchIndex, open_index
from imagedex.index import engine_dsl as dsl
from imagedex.people import manage
from imagedex.people.store import PeopleStore
from test_people_store import centre, document, face, near

BACKENDS = ["sqlite", "opensearch", "elasticsearch"]


def people_documents(data: Path) -> list[ImageDocument]:
    """img0..img3: Anna in each, Bob in img1..img3 (people 1 and 2, named)."""
    store = PeopleStore.in_data_dir(data)
    anna, bob = centre(), centre()
    docs = []
    for n in range(4):
        doc = document(f"img{n}", 2 if n else 1)
        doc.ingested_at = f"2026-01-01T00:00:0{n}.000Z"
        vectors = [near(anna)] + ([near(bob)] if n else [])
        manage.record_faces(store, doc, [face(doc.id, i, v) for i, v in enumerate(vectors)])
        docs.append(doc)
    for doc in docs:  # the faces of the first documents got their person with the third
        manage.set_person_ids(doc, store.document_people(doc.id))
    store.rename(1, "Anna Lee")
    store.rename(2, "Bob")
    store.close()
    docs.append(document("nobody", 0))
    return docs


def _open(request: pytest.FixtureRequest, data: Path, alias: str) -> SearchIndex:
    if request.param == "sqlite":
        return open_index("sqlite", data)
    base = request.getfixturevalue(f"{request.param}_url")
    return open_index(f"{request.param}+{base}/{alias}", data)


@pytest.fixture(params=BACKENDS)
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SearchIndex]:
    alias = f"people-{uuid.uuid4().hex[:8]}"
    idx = _open(request, tmp_path, alias)
    idx.upsert(people_documents(tmp_path))
    yield idx
    if request.param != "sqlite":
        idx.client.request("DELETE", f"/{alias}-v*")  # type: ignore[attr-defined]
    idx.close()


def ids(index: SearchIndex, *people: str, **more: object) -> list[str]:
    query = SearchQuery(people=people, sort="oldest", **more)  # type: ignore[arg-type]
    return [d.id for d in index.search(query).documents]


def test_person_search_is_the_same_on_every_backend(index: SearchIndex) -> None:
    assert ids(index, "1") == ["img0", "img1", "img2", "img3"]
    assert ids(index, "anna lee") == ["img0", "img1", "img2", "img3"]  # by name, any case
    assert ids(index, "Bob") == ["img1", "img2", "img3"]
    assert ids(index, "#2", "Anna Lee") == ["img1", "img2", "img3"]  # every person must show
    assert ids(index, "Carol") == []  # names nobody
    assert ids(index, "99") == []
    assert ids(index, "Bob", text="img3") == ["img3"]
    assert index.facets(SearchQuery(people=("Bob",))).total == 3
    got = index.get("img2")
    assert got is not None and [f.get("person_id") for f in got.faces] == [1, 2]


@pytest.mark.parametrize("flavor", ["opensearch", "elasticsearch"])
def test_an_index_from_before_nested_faces_is_told_to_migrate_then_works(
    flavor: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    base = request.getfixturevalue(f"{flavor}_url")
    alias = f"oldfaces-{uuid.uuid4().hex[:8]}"
    index = open_index(f"{flavor}+{base}/{alias}", tmp_path)
    client = index.client  # type: ignore[attr-defined]
    # what imagedex made before mapping version 2: faces stored, not searchable
    client.request("DELETE", f"/{alias}-v*")
    mappings = dsl.mappings(None)
    mappings["properties"]["faces"] = {"type": "object", "enabled": False}
    client.request("PUT", f"/{alias}-v1", {"settings": dsl.index_settings(), "mappings": mappings})
    client.request(
        "POST", "/_aliases", {"actions": [{"add": {"index": f"{alias}-v1", "alias": alias}}]}
    )
    index = open_index(f"{flavor}+{base}/{alias}", tmp_path)
    index.upsert(people_documents(tmp_path))
    with pytest.raises(ConfigError, match="imagedex index migrate"):
        index.search(SearchQuery(people=("Bob",)))
    assert index.search(SearchQuery(text="img1")).total == 1  # other searches work meanwhile
    moved = index.migrate()  # type: ignore[attr-defined]
    assert moved["to"] == f"{alias}-v2" and moved["documents"] == 5
    assert ids(index, "Bob") == ["img1", "img2", "img3"]
    client.request("DELETE", f"/{alias}-v*")
    index.close()
