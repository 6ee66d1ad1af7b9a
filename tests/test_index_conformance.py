"""One conformance suite for every SearchIndex backend: same documents in, same answers out.

SQLite always runs; OpenSearch and Elasticsearch run against real nodes started by
deploy/opensearch.sh and deploy/elasticsearch.sh (from Maven Central artifacts).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagedex.documents import ImageDocument, Label, SearchQuery, document_id
from imagedex.index import SearchIndex, open_index

BACKENDS = ["sqlite", "opensearch", "elasticsearch"]


def make_doc(
    key: str, labels: list[tuple[str, float, tuple[str, ...]]], at: int, **extra: object
) -> ImageDocument:
    return ImageDocument(
        id=document_id("b", key),
        bucket="b",
        key=key,
        title=str(extra.get("title", key)),
        s3_location=f"s3://b/{key}",
        etag=f"etag-{key}",
        size=1000 + at,
        content_type="image/jpeg",
        width=640,
        height=480,
        ingested_at=f"2026-01-01T00:00:{at:02d}.000Z",
        analyzed_with={"imagenet-mobilenet_v2": "1"},
        labels=[
            Label(n, c, p, aliases=("alias-" + n,) if n == "pizza" else ()) for n, c, p in labels
        ],
        text=list(extra.get("text", [])),  # type: ignore[call-overload]
    )


CORPUS = [
    make_doc("pizza1.jpg", [("pizza", 95.0, ("food",)), ("plate", 40.0, ())], 1),
    make_doc("pizza2.jpg", [("pizza", 85.0, ("food",))], 2),
    make_doc(
        "dog.jpg", [("Golden Retriever", 88.0, ("dog", "animal"))], 3, title="Rex at the Beach"
    ),
    make_doc("cat.jpg", [("tabby cat", 70.0, ("cat", "animal"))], 4, text=["OPEN 24 HOURS"]),
    make_doc("café.jpg", [("espresso", 99.0, ("coffee", "beverage"))], 5, title="Café crème"),
    make_doc("empty.jpg", [], 6),
]


@pytest.fixture(params=BACKENDS)
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SearchIndex]:
    if request.param == "sqlite":
        idx = open_index("sqlite", tmp_path)
        idx.upsert(CORPUS)
        yield idx
        idx.close()
        return
    base = request.getfixturevalue(f"{request.param}_url")
    alias = f"conformance-{uuid.uuid4().hex[:8]}"
    idx = open_index(f"{request.param}+{base}/{alias}", tmp_path)
    idx.upsert(CORPUS)
    yield idx
    idx.client.request("DELETE", f"/{alias}-v*")  # type: ignore[attr-defined]
    idx.close()


def keys(index: SearchIndex, **kw: object) -> list[str]:
    return [d.key for d in index.search(SearchQuery(**kw)).documents]  # type: ignore[arg-type]


def test_same_documents_round_trip(index: SearchIndex) -> None:
    for doc in CORPUS:
        got = index.get(doc.id)
        assert got is not None
        assert got.to_dict() == doc.to_dict()
    assert index.get("missing") is None
    assert index.count() == len(CORPUS)
    ids = sorted(d.id for d in index.iter_documents())
    assert ids == sorted(d.id for d in CORPUS)


def test_label_queries(index: SearchIndex) -> None:
    assert keys(index, labels=("pizza",)) == ["pizza1.jpg", "pizza2.jpg"]
    assert keys(index, labels=("Pizza",), min_confidence=90) == ["pizza1.jpg"]
    assert keys(index, labels=("alias-pizza",), min_confidence=90) == ["pizza1.jpg"]
    assert keys(index, labels=("golden retriever",)) == ["dog.jpg"]
    assert keys(index, labels=("DOG",)) == ["dog.jpg"]
    assert keys(index, labels=("animal",)) == ["dog.jpg", "cat.jpg"]
    assert keys(index, labels=("food",), min_confidence=90) == ["pizza1.jpg"]
    assert keys(index, labels=("pizza", "plate")) == ["pizza1.jpg"]
    assert keys(index, labels=("pizza", "plate"), min_confidence=50) == []
    assert keys(index, labels=("pizza", "dog"), match_all_labels=False) == [
        "pizza1.jpg",
        "dog.jpg",
        "pizza2.jpg",
    ]
    assert keys(index, min_confidence=96) == ["café.jpg"]
    assert index.search(SearchQuery(labels=("pizza",), limit=1)).total == 2


def test_text_queries(index: SearchIndex) -> None:
    assert keys(index, text="beach") == ["dog.jpg"]
    assert keys(index, text="retriever") == ["dog.jpg"]
    assert keys(index, text="open 24") == ["cat.jpg"]
    assert keys(index, text="cafe") == ["café.jpg"]  # diacritics folded
    assert set(keys(index, text="piz")) == {"pizza1.jpg", "pizza2.jpg"}
    assert keys(index, text="beach", labels=("dog",)) == ["dog.jpg"]
    assert keys(index, text="beach", labels=("cat",)) == []
    assert len(keys(index, text="!!!")) == len(CORPUS)  # no words: no text filter
    for hostile in ['" OR 1=1 --', "NEAR(a b)", "title:pizza*", "*", '{"match_all": {}}']:
        index.search(SearchQuery(text=hostile))
    assert index.count() == len(CORPUS)


def test_sorting_and_paging(index: SearchIndex) -> None:
    newest = keys(index, sort="newest")
    assert newest == ["empty.jpg", "café.jpg", "cat.jpg", "dog.jpg", "pizza2.jpg", "pizza1.jpg"]
    assert keys(index, sort="oldest", limit=2, offset=1) == ["pizza2.jpg", "dog.jpg"]
    assert keys(index, sort="newest", labels=("pizza",)) == ["pizza2.jpg", "pizza1.jpg"]
    titles = [d.title.lower() for d in index.search(SearchQuery(sort="title")).documents]
    assert titles == sorted(titles)


def test_aggregations(index: SearchIndex) -> None:
    top = [(c.label, c.count) for c in index.top_labels(3)]
    assert top[0] == ("pizza", 2)
    assert {c.label for c in index.top_labels(100)} == {
        "pizza",
        "plate",
        "Golden Retriever",
        "tabby cat",
        "espresso",
    }
    confident = {(c.label, c.count) for c in index.top_labels(100, min_confidence=86)}
    assert confident == {("pizza", 1), ("Golden Retriever", 1), ("espresso", 1)}


def test_upsert_replaces_and_delete_removes(index: SearchIndex) -> None:
    changed = make_doc("pizza2.jpg", [("calzone", 60.0, ("food",))], 2)
    index.upsert([changed, changed])
    assert index.count() == len(CORPUS)
    assert keys(index, labels=("pizza",)) == ["pizza1.jpg"]
    assert {c.label: c.count for c in index.top_labels(100)}["pizza"] == 1
    assert index.delete(changed.id) is True
    assert index.delete(changed.id) is False
    assert keys(index, labels=("calzone",)) == []
    assert index.count() == len(CORPUS) - 1


def test_find_by_title(index: SearchIndex) -> None:
    (found,) = index.find_by_title("rex at the BEACH")
    assert found.key == "dog.jpg"
    assert index.find_by_title("nope") == []


def test_near_duplicates_by_perceptual_hash(index: SearchIndex) -> None:
    import dataclasses

    base = make_doc("orig.jpg", [("tabby cat", 70.0, ("cat",))], 7)
    near = make_doc("copy.jpg", [("tabby cat", 69.0, ("cat",))], 8)
    far = make_doc("other.jpg", [("espresso", 90.0, ())], 9)
    index.upsert(
        [
            dataclasses.replace(base, phash="f0f0f0f0f0f0f0f0"),
            dataclasses.replace(near, phash="f0f0f0f0f0f0f0f3"),  # 2 bits away
            dataclasses.replace(far, phash="0f0f0f0f0f0f0f0f"),
        ]
    )
    found = index.near_duplicates("f0f0f0f0f0f0f0f1")  # type: ignore[attr-defined]
    assert set(found) == {base.id, near.id}
    assert index.near_duplicates("1234567812345678") == []  # type: ignore[attr-defined]


def test_moderation_filter(index: SearchIndex) -> None:
    import dataclasses

    flagged = dataclasses.replace(
        make_doc("beach.jpg", [("swimsuit", 80.0, ("clothing",))], 10),
        moderation=[{"label": "Suggestive", "confidence": 72.0, "parent": ""}],
    )
    mild = dataclasses.replace(
        make_doc("mild.jpg", [("swimsuit", 60.0, ("clothing",))], 11),
        moderation=[{"label": "Suggestive", "confidence": 20.0, "parent": ""}],
    )
    index.upsert([flagged, mild])
    assert keys(index, moderation="unsafe") == ["beach.jpg"]
    assert keys(index, labels=("swimsuit",), moderation="safe") == ["mild.jpg"]
    assert keys(index, moderation="unsafe", unsafe_threshold=10, sort="newest") == [
        "mild.jpg",
        "beach.jpg",
    ]
    assert index.search(SearchQuery(moderation="safe")).total == len(CORPUS) + 1


def _vec(**components: float) -> list[float]:
    v = [0.0] * 384
    for index, value in components.items():
        v[int(index[1:])] = value
    return v


def test_vector_search_semantic_and_like(index: SearchIndex) -> None:
    import dataclasses

    docs = [
        dataclasses.replace(make_doc("v-dog.jpg", [("dog", 90.0, ())], 20), embedding=_vec(d0=1.0)),
        dataclasses.replace(
            make_doc("v-puppy.jpg", [("dog", 60.0, ())], 21), embedding=_vec(d0=1.0, d1=0.5)
        ),
        dataclasses.replace(
            make_doc("v-tax.jpg", [("paper", 70.0, ())], 22), embedding=_vec(d2=1.0)
        ),
        dataclasses.replace(
            make_doc("v-near.jpg", [("paper", 50.0, ())], 23), embedding=_vec(d0=0.25, d2=1.0)
        ),
    ]
    index.upsert(docs)
    got = index.get(docs[1].id)
    assert got is not None and got.embedding == docs[1].embedding
    query = tuple(_vec(d0=2.0))
    result = index.search(SearchQuery(vector=query))
    assert [d.key for d in result.documents] == ["v-dog.jpg", "v-puppy.jpg", "v-near.jpg"]
    assert result.total == 3  # the orthogonal one is no match
    like = index.search(SearchQuery(vector=query, exclude_id=docs[0].id))
    assert [d.key for d in like.documents] == ["v-puppy.jpg", "v-near.jpg"]
    filtered = index.search(SearchQuery(vector=query, labels=("paper",)))
    assert [d.key for d in filtered.documents] == ["v-near.jpg"]
    paged = index.search(SearchQuery(vector=query, limit=1, offset=1))
    assert [d.key for d in paged.documents] == ["v-puppy.jpg"]
