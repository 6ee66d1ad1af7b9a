"""One conformance suite for every SearchIndex backend: same documents in, same answers out.

SQLite always runs; OpenSearch (2.19 and the newest supported 3.x) and Elasticsearch (8.x and
the newest supported 9.x) run against real nodes started by deploy/opensearch.sh and
deploy/elasticsearch.sh (from Maven Central artifacts).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import make_document
from imagedex.documents import Facets, ImageDocument, Label, SearchQuery
from imagedex.index import SearchIndex, open_index

# a backend's fixture is `<name>_url`; its index URL scheme is the name less the major
BACKENDS = ["sqlite", "opensearch", "opensearch3", "elasticsearch", "elasticsearch9"]


def make_doc(
    key: str, labels: list[tuple[str, float, tuple[str, ...]]], at: int, **extra: object
) -> ImageDocument:
    return make_document(
        key,
        [Label(n, c, p, aliases=("alias-" + n,) if n == "pizza" else ()) for n, c, p in labels],
        title=str(extra.get("title", key)),
        etag=f"etag-{key}",
        size=1000 + at,
        content_type="image/jpeg",
        width=640,
        height=480,
        ingested_at=f"2026-01-01T00:00:{at:02d}.000Z",
        analyzed_with={"imagenet": "1"},
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


def _backend(
    request: pytest.FixtureRequest, tmp_path: Path, docs: list[ImageDocument]
) -> Iterator[SearchIndex]:
    if request.param == "sqlite":
        idx = open_index("sqlite", tmp_path)
        if docs:
            idx.upsert(docs)
        yield idx
        idx.close()
        return
    base = request.getfixturevalue(f"{request.param}_url")
    alias = f"conformance-{uuid.uuid4().hex[:8]}"
    idx = open_index(f"{request.param.rstrip('0123456789')}+{base}/{alias}", tmp_path)
    if docs:
        idx.upsert(docs)
    yield idx
    idx.client.request("DELETE", f"/{alias}-v*")  # type: ignore[attr-defined]
    idx.close()


@pytest.fixture(scope="module", params=BACKENDS)
def corpus(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SearchIndex]:
    """CORPUS indexed once per backend, shared by the tests that only read (an engine index
    costs a second or two to create and drop on this machine)."""
    yield from _backend(request, tmp_path_factory.mktemp("corpus"), CORPUS)


@pytest.fixture(params=BACKENDS)
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SearchIndex]:
    """CORPUS in an index of the test's own, for tests that write to it."""
    yield from _backend(request, tmp_path, CORPUS)


@pytest.fixture(params=BACKENDS)
def empty_index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SearchIndex]:
    yield from _backend(request, tmp_path, [])


def keys(index: SearchIndex, **kw: object) -> list[str]:
    return [d.key for d in index.search(SearchQuery(**kw)).documents]  # type: ignore[arg-type]


def test_same_documents_round_trip(corpus: SearchIndex) -> None:
    for doc in CORPUS:
        got = corpus.get(doc.id)
        assert got is not None
        assert got.to_dict() == doc.to_dict()
    assert corpus.get("missing") is None
    assert corpus.count() == len(CORPUS)
    ids = sorted(d.id for d in corpus.iter_documents())
    assert ids == sorted(d.id for d in CORPUS)


def test_label_queries(corpus: SearchIndex) -> None:
    assert keys(corpus, labels=("pizza",)) == ["pizza1.jpg", "pizza2.jpg"]
    assert keys(corpus, labels=("Pizza",), min_confidence=90) == ["pizza1.jpg"]
    assert keys(corpus, labels=("alias-pizza",), min_confidence=90) == ["pizza1.jpg"]
    assert keys(corpus, labels=("golden retriever",)) == ["dog.jpg"]
    assert keys(corpus, labels=("DOG",)) == ["dog.jpg"]
    assert keys(corpus, labels=("animal",)) == ["dog.jpg", "cat.jpg"]
    assert keys(corpus, labels=("food",), min_confidence=90) == ["pizza1.jpg"]
    assert keys(corpus, labels=("pizza", "plate")) == ["pizza1.jpg"]
    assert keys(corpus, labels=("pizza", "plate"), min_confidence=50) == []
    assert keys(corpus, labels=("pizza", "dog"), match_all_labels=False) == [
        "pizza1.jpg",
        "dog.jpg",
        "pizza2.jpg",
    ]
    assert keys(corpus, min_confidence=96) == ["café.jpg"]
    assert corpus.search(SearchQuery(labels=("pizza",), limit=1)).total == 2


def test_text_queries(corpus: SearchIndex) -> None:
    assert keys(corpus, text="beach") == ["dog.jpg"]
    assert keys(corpus, text="retriever") == ["dog.jpg"]
    assert keys(corpus, text="open 24") == ["cat.jpg"]
    assert keys(corpus, text="cafe") == ["café.jpg"]  # diacritics folded
    assert set(keys(corpus, text="piz")) == {"pizza1.jpg", "pizza2.jpg"}
    assert keys(corpus, text="beach", labels=("dog",)) == ["dog.jpg"]
    assert keys(corpus, text="beach", labels=("cat",)) == []
    assert len(keys(corpus, text="!!!")) == len(CORPUS)  # no words: no text filter
    for hostile in ['" OR 1=1 --', "NEAR(a b)", "title:pizza*", "*", '{"match_all": {}}']:
        corpus.search(SearchQuery(text=hostile))
    assert corpus.count() == len(CORPUS)


def test_sorting_and_paging(corpus: SearchIndex) -> None:
    newest = keys(corpus, sort="newest")
    assert newest == ["empty.jpg", "café.jpg", "cat.jpg", "dog.jpg", "pizza2.jpg", "pizza1.jpg"]
    assert keys(corpus, sort="oldest", limit=2, offset=1) == ["pizza2.jpg", "dog.jpg"]
    assert keys(corpus, sort="newest", labels=("pizza",)) == ["pizza2.jpg", "pizza1.jpg"]
    titles = [d.title.lower() for d in corpus.search(SearchQuery(sort="title")).documents]
    assert titles == sorted(titles)


def test_aggregations(corpus: SearchIndex) -> None:
    top = [(c.label, c.count) for c in corpus.top_labels(3)]
    assert top[0] == ("pizza", 2)
    assert {c.label for c in corpus.top_labels(100)} == {
        "pizza",
        "plate",
        "Golden Retriever",
        "tabby cat",
        "espresso",
    }
    confident = {(c.label, c.count) for c in corpus.top_labels(100, min_confidence=86)}
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


def test_find_by_title(corpus: SearchIndex) -> None:
    (found,) = corpus.find_by_title("rex at the BEACH")
    assert found.key == "dog.jpg"
    assert corpus.find_by_title("nope") == []


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


def _looks(**weights: float) -> list[float]:
    """A 1280-d "visual embedding": a weighted sum of fixed random directions (`a`, `b`, ...),
    in float32 values as the analyzer gives them. Random directions are nearly orthogonal."""
    import numpy as np

    total = np.zeros(1280, dtype=np.float64)
    for name, weight in weights.items():
        total += weight * np.random.default_rng(ord(name)).standard_normal(1280)
    unit = (total / np.linalg.norm(total)).astype(np.float32)
    return [float(x) for x in unit]


def test_visual_neighbours(index: SearchIndex) -> None:
    """Similar-image search on `visual_embedding`: the same photo under another name is the
    nearest neighbour, filters and paging apply, and the text `embedding` is a separate space."""
    import dataclasses

    def doc(
        key: str,
        at: int,
        visual: list[float] | None,
        text: list[float] | None,
        *labels: tuple[str, float, tuple[str, ...]],
    ) -> ImageDocument:
        made = make_doc(key, list(labels), at)
        return dataclasses.replace(made, visual_embedding=visual, embedding=text)

    horse = ("horse", 90.0, ("animal",))
    docs = [
        doc("crop_11_horses.jpg", 30, _looks(a=1.0), _vec(d5=1.0), horse),
        doc("b12.jpg", 31, _looks(a=1.0, n=0.25), _vec(d7=1.0)),  # the same photo, re-encoded
        doc("field.jpg", 32, _looks(a=0.8, b=0.6), None, ("horse", 70.0, ("animal",))),
        doc("barn.jpg", 33, _looks(a=0.45, b=0.9), _vec(d5=1.0, d6=0.5), ("barn", 60.0, ())),
        doc("coffee.jpg", 34, _looks(c=1.0), _vec(d8=1.0), ("espresso", 99.0, ())),
        doc("old.jpg", 35, None, _vec(d5=1.0, d6=1.0), horse),  # not reprocessed yet
    ]
    index.upsert(docs)
    original, renamed = docs[0], docs[1]
    got = index.get(renamed.id)
    assert got is not None and got.visual_embedding == renamed.visual_embedding
    assert got.embedding == renamed.embedding

    def like(example: ImageDocument, **kw: object) -> list[str]:
        assert example.visual_embedding is not None
        query = SearchQuery(  # type: ignore[arg-type]
            vector=tuple(example.visual_embedding),
            vector_field="visual_embedding",
            exclude_id=example.id,
            **kw,
        )
        return [d.key for d in index.search(query).documents]

    assert like(original) == ["b12.jpg", "field.jpg", "barn.jpg"]  # coffee is no match
    assert like(renamed) == ["crop_11_horses.jpg", "field.jpg", "barn.jpg"]
    assert like(original, labels=("animal",)) == ["field.jpg"]  # filters still apply
    assert like(original, limit=1, offset=1) == ["field.jpg"]
    looks = SearchQuery(vector=tuple(_looks(a=1.0)), vector_field="visual_embedding")
    result = index.search(looks)
    assert [d.key for d in result.documents][:2] == ["crop_11_horses.jpg", "b12.jpg"]
    assert result.total == 4 and "old.jpg" not in [d.key for d in result.documents]
    # the text embedding is its own space: the words' neighbours, not the pixels'
    words = index.search(
        SearchQuery(vector=tuple(_vec(d5=1.0)), labels=("horse", "barn"), match_all_labels=False)
    )
    assert [d.key for d in words.documents] == ["crop_11_horses.jpg", "barn.jpg", "old.jpg"]


# -- date ranges and facets ------------------------------------------------------------------------


def labels_of(facets: Facets) -> list[tuple[str, int]]:
    return [(c.label, c.count) for c in facets.labels]


def times_of(facets: Facets) -> list[tuple[str, int]]:
    return [(b.start, b.count) for b in facets.over_time]


def confidence_of(facets: Facets) -> list[int]:
    assert [(b.low, b.high) for b in facets.confidence] == [(i, i + 10) for i in range(0, 100, 10)]
    return [b.count for b in facets.confidence]


def test_date_range_filters_search(corpus: SearchIndex) -> None:
    window = {"date_from": "2026-01-01T00:00:03Z", "date_to": "2026-01-01T00:00:05Z"}
    assert keys(corpus, sort="oldest", **window) == ["dog.jpg", "cat.jpg"]  # to is exclusive
    shifted = {"date_from": "2026-01-01T01:00:03+01:00", "date_to": "2026-01-01T00:00:05.000Z"}
    assert keys(corpus, sort="oldest", **shifted) == ["dog.jpg", "cat.jpg"]
    assert keys(corpus, labels=("animal",), date_from="2026-01-01T00:00:04Z") == ["cat.jpg"]
    assert keys(corpus, text="pizza", date_to="2026-01-01T00:00:02Z") == ["pizza1.jpg"]
    assert corpus.search(SearchQuery(date_from="2026-01-02")).total == 0
    assert corpus.search(SearchQuery(date_to="2026-01-02")).total == len(CORPUS)


def test_facets_over_everything(corpus: SearchIndex) -> None:
    facets = corpus.facets(SearchQuery())
    assert facets.total == len(CORPUS)
    assert labels_of(facets) == [
        ("pizza", 2),
        ("espresso", 1),
        ("Golden Retriever", 1),
        ("plate", 1),
        ("tabby cat", 1),
    ]
    assert labels_of(corpus.facets(SearchQuery(), labels=2)) == [("pizza", 2), ("espresso", 1)]
    assert times_of(facets) == [("2026-01-01T00:00:00Z", 6)]
    assert times_of(corpus.facets(SearchQuery(), interval="minute")) == [
        ("2026-01-01T00:00:00Z", 6)
    ]
    # best label per image: 95, 85, 88, 70, 99; the image without labels is in no bucket
    assert confidence_of(facets) == [0, 0, 0, 0, 0, 0, 0, 1, 2, 2]
    assert (facets.moderation.safe, facets.moderation.unsafe) == (6, 0)
    assert facets.moderation.labels == []
    assert facets.to_dict()["labels"][0] == {"label": "pizza", "count": 2}


def test_facets_follow_the_query_filters(corpus: SearchIndex) -> None:
    animals = corpus.facets(SearchQuery(labels=("animal",)))  # via parents, counted by own label
    assert animals.total == 2
    assert labels_of(animals) == [("Golden Retriever", 1), ("tabby cat", 1)]
    assert confidence_of(animals) == [0, 0, 0, 0, 0, 0, 0, 1, 1, 0]
    food = corpus.facets(SearchQuery(labels=("food",), min_confidence=90))
    assert (food.total, labels_of(food)) == (1, [("pizza", 1)])  # plate is only 40%
    confident = corpus.facets(SearchQuery(min_confidence=86))
    assert confident.total == 3
    assert labels_of(confident) == [("espresso", 1), ("Golden Retriever", 1), ("pizza", 1)]
    text = corpus.facets(SearchQuery(text="pizza"))
    assert (text.total, labels_of(text)) == (2, [("pizza", 2), ("plate", 1)])
    dated = corpus.facets(
        SearchQuery(date_from="2026-01-01T00:00:03Z", date_to="2026-01-01T00:00:05Z")
    )
    assert (dated.total, labels_of(dated)) == (2, [("Golden Retriever", 1), ("tabby cat", 1)])
    either = corpus.facets(SearchQuery(labels=("pizza", "dog"), match_all_labels=False))
    assert labels_of(either) == [("pizza", 2), ("Golden Retriever", 1), ("plate", 1)]
    assert corpus.facets(SearchQuery(labels=("nothing",))).total == 0
    vector = corpus.facets(SearchQuery(labels=("animal",), vector=tuple(_vec(d0=1.0))))
    assert vector == animals  # a vector ranks; facets count the filtered documents


def test_facets_count_moderation(index: SearchIndex) -> None:
    import dataclasses

    flagged = dataclasses.replace(
        make_doc("beach.jpg", [("swimsuit", 80.0, ())], 10),
        moderation=[
            {"label": "Suggestive", "confidence": 72.0, "parent": ""},
            {"label": "Revealing Clothes", "confidence": 60.0, "parent": "Suggestive"},
        ],
    )
    mild = dataclasses.replace(
        make_doc("mild.jpg", [("swimsuit", 60.0, ())], 11),
        moderation=[{"label": "Suggestive", "confidence": 20.0, "parent": ""}],
    )
    index.upsert([flagged, mild])
    facets = index.facets(SearchQuery())
    assert (facets.moderation.safe, facets.moderation.unsafe) == (7, 1)
    assert labels_of_moderation(facets) == [("Revealing Clothes", 1), ("Suggestive", 1)]
    low = index.facets(SearchQuery(unsafe_threshold=10))
    assert (low.moderation.safe, low.moderation.unsafe) == (6, 2)
    assert labels_of_moderation(low) == [("Suggestive", 2), ("Revealing Clothes", 1)]
    unsafe = index.facets(SearchQuery(moderation="unsafe"))
    assert (unsafe.total, unsafe.moderation.safe, unsafe.moderation.unsafe) == (1, 0, 1)
    assert labels_of(unsafe) == [("swimsuit", 1)]
    safe = index.facets(SearchQuery(moderation="safe", labels=("swimsuit",)))
    assert (safe.total, safe.moderation.unsafe, labels_of_moderation(safe)) == (1, 0, [])


def labels_of_moderation(facets: Facets) -> list[tuple[str, int]]:
    return [(c.label, c.count) for c in facets.moderation.labels]


EDGES = [
    make_doc("a.jpg", [("cat", 50.0, ())], 0),
    make_doc("b.jpg", [("cat", 100.0, ())], 0),
    make_doc("c.jpg", [("dog", 9.5, ())], 0),
    make_doc("d.jpg", [], 0),
]
EDGE_TIMES = {
    "a.jpg": "2026-01-31T23:59:59.999Z",  # a Saturday
    "b.jpg": "2026-02-01T00:30:00+01:00",  # 2026-01-31T23:30Z
    "c.jpg": "2026-02-01T00:00:00.000Z",
    "d.jpg": "2026-03-15T12:00:00Z",
}


def test_facets_timezone_edges_and_intervals(empty_index: SearchIndex) -> None:
    import dataclasses

    index = empty_index
    index.upsert([dataclasses.replace(d, ingested_at=EDGE_TIMES[d.key]) for d in EDGES])
    assert keys(index, sort="oldest", date_to="2026-02-01") == ["b.jpg", "a.jpg"]
    assert keys(index, sort="oldest", date_from="2026-02-01T01:00:00+01:00") == ["c.jpg", "d.jpg"]
    month = index.facets(SearchQuery(), interval="month")
    assert times_of(month) == [
        ("2026-01-01T00:00:00Z", 2),
        ("2026-02-01T00:00:00Z", 1),
        ("2026-03-01T00:00:00Z", 1),
    ]
    week = times_of(index.facets(SearchQuery(), interval="week"))
    assert week[0] == ("2026-01-26T00:00:00Z", 3) and week[-1] == ("2026-03-09T00:00:00Z", 1)
    assert [n for _, n in week] == [3, 0, 0, 0, 0, 0, 1]
    hours = index.facets(SearchQuery(date_to="2026-02-01T01:00:00Z"), interval="hour")
    assert times_of(hours) == [("2026-01-31T23:00:00Z", 2), ("2026-02-01T00:00:00Z", 1)]
    days = index.facets(SearchQuery(date_from="2026-01-31", date_to="2026-02-03"))
    assert days.total == 3
    assert times_of(days) == [
        ("2026-01-31T00:00:00Z", 2),
        ("2026-02-01T00:00:00Z", 1),
        ("2026-02-02T00:00:00Z", 0),
    ]
    # 100 belongs to the last bucket, 9.5 to the first; d.jpg has no label
    assert confidence_of(index.facets(SearchQuery())) == [1, 0, 0, 0, 0, 1, 0, 0, 0, 1]
    with pytest.raises(ValueError, match="interval"):
        index.facets(SearchQuery(), interval="year")
    with pytest.raises(ValueError, match="buckets"):
        index.facets(SearchQuery(date_from="2000-01-01"), interval="minute")


def test_facets_of_an_empty_index_and_one_document(empty_index: SearchIndex) -> None:
    facets = empty_index.facets(SearchQuery())
    assert (facets.total, facets.labels, facets.over_time) == (0, [], [])
    assert confidence_of(facets) == [0] * 10
    assert (facets.moderation.safe, facets.moderation.unsafe, facets.moderation.labels) == (
        0,
        0,
        [],
    )
    ranged = empty_index.facets(SearchQuery(date_from="2026-01-01", date_to="2026-01-03"))
    assert times_of(ranged) == [("2026-01-01T00:00:00Z", 0), ("2026-01-02T00:00:00Z", 0)]
    empty_index.upsert([make_doc("one.jpg", [("kite", 42.0, ("toy",))], 7)])
    one = empty_index.facets(SearchQuery(labels=("toy",)))
    assert (one.total, labels_of(one)) == (1, [("kite", 1)])
    assert times_of(one) == [("2026-01-01T00:00:00Z", 1)]
    assert confidence_of(one) == [0, 0, 0, 0, 1, 0, 0, 0, 0, 0]


def test_top_labels_and_facets_count_leaf_labels_unless_parents_are_asked(
    empty_index: SearchIndex,
) -> None:
    """A classifier stores broader labels of its own (Dog at its subtree's mass) so searches by
    them find the image; counts show the most specific label of each image."""
    retriever = Label("Golden Retriever", 80.0, ("Dog", "Animal"))
    dog, animal = Label("Dog", 97.0, ("Animal",)), Label("Animal", 99.0)
    a, b = make_doc("a.jpg", [], 1), make_doc("b.jpg", [], 2)
    a.labels = b.labels = [retriever, dog, animal]
    empty_index.upsert([a, b, make_doc("c.jpg", [("tabby cat", 90.0, ("Cat", "Animal"))], 3)])
    leaves = {(c.label, c.count) for c in empty_index.top_labels(10)}
    assert leaves == {("Golden Retriever", 2), ("tabby cat", 1)}
    everything = {(c.label, c.count) for c in empty_index.top_labels(10, parents=True)}
    assert everything == {("Golden Retriever", 2), ("Dog", 2), ("Animal", 2), ("tabby cat", 1)}
    confident = {(c.label, c.count) for c in empty_index.top_labels(10, min_confidence=85)}
    assert confident == {("tabby cat", 1)}
    assert {(c.label, c.count) for c in empty_index.top_labels(10, 85, parents=True)} == {
        ("Dog", 2),
        ("Animal", 2),
        ("tabby cat", 1),
    }
    facets = empty_index.facets(SearchQuery(labels=("animal",)))
    assert {(c.label, c.count) for c in facets.labels} == leaves
    # the search still finds the image by its broader labels, at their own confidence
    assert keys(empty_index, labels=("dog",), min_confidence=95) == ["b.jpg", "a.jpg"]
    # replacing a document moves its counts
    a.labels = [Label("Cat", 70.0)]
    empty_index.upsert([a])
    assert {(c.label, c.count) for c in empty_index.top_labels(10)} == {
        ("Golden Retriever", 1),
        ("tabby cat", 1),
        ("Cat", 1),
    }
