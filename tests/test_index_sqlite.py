from pathlib import Path

import pytest

from conftest import make_document
from imagedex.documents import ImageDocument, SearchQuery, document_id
from imagedex.index.sqlite import (
    _MIGRATIONS,
    SqliteIndex,
    _count_leaves,
    _term_counts,
    fts_query,
)
from imagedex.index.sqlite_vectors import VISUAL_SCHEMA


def doc(
    key: str, labels: list[tuple[str, float, tuple[str, ...]]], **extra: object
) -> ImageDocument:
    extra.setdefault("ingested_at", "2026-01-01T00:00:00Z")
    return make_document(key, labels, **extra)


@pytest.fixture
def index(tmp_path: Path) -> SqliteIndex:
    idx = SqliteIndex(tmp_path / "index.sqlite3")
    idx.upsert(
        [
            doc(
                "pizza1.jpg",
                [("pizza", 95.0, ("food",)), ("plate", 40.0, ())],
                ingested_at="2026-01-01T00:00:01Z",
            ),
            doc("pizza2.jpg", [("pizza", 85.0, ("food",))], ingested_at="2026-01-01T00:00:02Z"),
            doc(
                "dog.jpg",
                [("golden retriever", 88.0, ("dog", "animal"))],
                title="Rex at the beach",
                ingested_at="2026-01-01T00:00:03Z",
            ),
            doc(
                "cat.jpg",
                [("tabby cat", 70.0, ("cat", "animal"))],
                text=["OPEN 24 HOURS"],
                ingested_at="2026-01-01T00:00:04Z",
            ),
        ]
    )
    return idx


def titles(index: SqliteIndex, **kw: object) -> list[str]:
    return [d.key for d in index.search(SearchQuery(**kw)).documents]  # type: ignore[arg-type]


def test_label_with_min_confidence(index: SqliteIndex) -> None:
    assert titles(index, labels=("pizza",)) == ["pizza1.jpg", "pizza2.jpg"]
    assert titles(index, labels=("pizza",), min_confidence=90) == ["pizza1.jpg"]
    assert titles(index, labels=("PIZZA",), min_confidence=96) == []
    assert index.search(SearchQuery(labels=("pizza",))).total == 2


def test_parents_match_and_are_case_insensitive(index: SqliteIndex) -> None:
    assert titles(index, labels=("Dog",)) == ["dog.jpg"]
    assert titles(index, labels=("animal",)) == ["dog.jpg", "cat.jpg"]  # by confidence
    assert titles(index, labels=("food",), min_confidence=90) == ["pizza1.jpg"]


def test_all_versus_any(index: SqliteIndex) -> None:
    assert titles(index, labels=("pizza", "plate")) == ["pizza1.jpg"]
    assert titles(index, labels=("pizza", "dog")) == []
    any_keys = titles(index, labels=("pizza", "dog"), match_all_labels=False)
    assert any_keys == ["pizza1.jpg", "dog.jpg", "pizza2.jpg"]


def test_free_text_title_labels_and_ocr(index: SqliteIndex) -> None:
    assert titles(index, text="beach") == ["dog.jpg"]
    assert titles(index, text="retriever") == ["dog.jpg"]
    assert titles(index, text="open 24") == ["cat.jpg"]
    assert set(titles(index, text="piz")) == {"pizza1.jpg", "pizza2.jpg"}  # prefix match
    assert titles(index, text="beach", labels=("dog",)) == ["dog.jpg"]
    assert titles(index, text="beach", labels=("cat",)) == []


def test_hostile_text_is_just_text(index: SqliteIndex) -> None:
    for text in ['" OR 1=1 --', "NEAR(a b)", "title:pizza*", "'); DROP TABLE docs; --", "*"]:
        index.search(SearchQuery(text=text))
    assert index.count() == 4
    assert fts_query('a"b c') == '"a" "b" "c"*'
    assert fts_query("!!!") is None


def test_sorting_and_paging(index: SqliteIndex) -> None:
    newest = titles(index, sort="newest")
    assert newest == ["cat.jpg", "dog.jpg", "pizza2.jpg", "pizza1.jpg"]
    assert titles(index, sort="newest", limit=2, offset=2) == ["pizza2.jpg", "pizza1.jpg"]
    assert titles(index, sort="oldest", limit=1) == ["pizza1.jpg"]


def test_upsert_is_idempotent_and_updates_counts(index: SqliteIndex) -> None:
    assert [(c.label, c.count) for c in index.top_labels(2)] == [
        ("pizza", 2),
        ("golden retriever", 1),
    ]
    again = doc("pizza2.jpg", [("calzone", 60.0, ("food",))])
    index.upsert([again, again])
    assert index.count() == 4
    counts = {c.label: c.count for c in index.top_labels(10)}
    assert counts["pizza"] == 1 and counts["calzone"] == 1
    assert titles(index, labels=("pizza",)) == ["pizza1.jpg"]
    assert titles(index, text="calzone") == ["pizza2.jpg"]


def test_top_labels_with_min_confidence(index: SqliteIndex) -> None:
    top = {c.label: c.count for c in index.top_labels(10, min_confidence=80)}
    assert top == {"pizza": 2, "golden retriever": 1}


def test_delete_and_get(index: SqliteIndex) -> None:
    doc_id = document_id("b", "dog.jpg")
    got = index.get(doc_id)
    assert got is not None and got.labels[0].parents == ("dog", "animal")
    assert index.delete(doc_id) is True
    assert index.delete(doc_id) is False
    assert index.get(doc_id) is None
    assert titles(index, labels=("dog",)) == []
    assert titles(index, text="beach") == []
    assert "golden retriever" not in {c.label for c in index.top_labels(10)}


def test_find_by_title(index: SqliteIndex) -> None:
    (found,) = index.find_by_title("rex AT the beach")
    assert found.key == "dog.jpg"


def test_query_validation() -> None:
    with pytest.raises(ValueError):
        SearchQuery(min_confidence=101)
    with pytest.raises(ValueError):
        SearchQuery(limit=0)


def test_date_bounds_are_validated_and_made_utc() -> None:
    query = SearchQuery(date_from="2026-01-01T02:00:00+02:00", date_to="2026-01-02")
    assert (query.date_from, query.date_to) == (
        "2026-01-01T00:00:00.000Z",
        "2026-01-02T00:00:00.000Z",
    )
    with pytest.raises(ValueError, match="date_from: 'soon' is not an ISO-8601"):
        SearchQuery(date_from="soon")
    with pytest.raises(ValueError, match="swap"):
        SearchQuery(date_from="2026-02-01", date_to="2026-01-01")
    with pytest.raises(ValueError, match="ISO-8601"):
        SearchQuery(date_to="0001-01-01T00:00:00+01:00")  # before the calendar starts in UTC
    for far in ("0001-01-01", "0001", "9999-12-31"):  # facet buckets would overflow there
        with pytest.raises(ValueError, match="between 1900 and 9998"):
            SearchQuery(date_to=far)


def test_an_index_from_before_facets_is_upgraded_on_open(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite3"
    idx = SqliteIndex(path)
    idx.upsert(
        [
            doc("late.jpg", [("owl", 77.0, ("bird",))], ingested_at="2026-01-01T00:30:00+01:00"),
            doc("early.jpg", [("cat", 42.0, ())], ingested_at="2025-12-31T23:45:00Z"),
        ]
    )
    idx.close()
    # the layout an earlier version left: no max_confidence, ingested_at as documents gave it
    db = sqlite3.connect(path)
    db.executescript(
        "DROP INDEX docs_max_confidence; ALTER TABLE docs DROP COLUMN max_confidence;"
        " UPDATE docs SET ingested_at = json_extract(body, '$.ingested_at');"
        " DELETE FROM meta WHERE key = 'ingested_at_utc'; PRAGMA user_version = 0;"
    )
    db.close()
    idx = SqliteIndex(path)
    oldest = [d.key for d in idx.search(SearchQuery(sort="oldest")).documents]
    assert oldest == ["late.jpg", "early.jpg"]  # 23:30Z before 23:45Z
    facets = idx.facets(SearchQuery(date_to="2025-12-31T23:40:00Z"), interval="hour")
    assert facets.total == 1
    assert [(b.start, b.count) for b in facets.over_time] == [("2025-12-31T23:00:00Z", 1)]
    assert [b.count for b in facets.confidence] == [0, 0, 0, 0, 0, 0, 0, 1, 0, 0]
    both = idx.facets(SearchQuery())
    assert [b.count for b in both.confidence] == [0, 0, 0, 0, 1, 0, 0, 1, 0, 0]
    assert idx.get(document_id("b", "late.jpg")).ingested_at == "2026-01-01T00:30:00+01:00"  # type: ignore[union-attr]


def test_visual_vectors_are_float32_blobs_in_their_own_table(tmp_path: Path) -> None:
    import sqlite3

    import numpy as np

    path = tmp_path / "index.sqlite3"
    idx = SqliteIndex(path)
    visual = [float(x) for x in np.linspace(0.0, 1.0, 1280, dtype=np.float32)]
    idx.upsert([doc("a.jpg", [], visual_embedding=visual, embedding=[1.0, 0.0, 0.0])])
    got = idx.get(document_id("b", "a.jpg"))
    assert got is not None and got.visual_embedding == visual and got.embedding == [1.0, 0, 0]
    assert [d.visual_embedding for d in idx.iter_documents()] == [visual]
    raw = sqlite3.connect(path)
    (body,) = raw.execute("SELECT body FROM docs").fetchone()
    (blob,) = raw.execute("SELECT vec FROM visual_embeddings").fetchone()
    assert "visual_embedding" not in body and "embedding" not in body  # not as JSON text
    assert len(blob) == 1280 * 4
    idx.upsert([doc("a.jpg", [])])  # re-analysed without one: the old vector goes
    assert raw.execute("SELECT COUNT(*) FROM visual_embeddings").fetchone() == (0,)
    raw.close()
    idx.close()


def test_an_index_from_before_visual_vectors_is_upgraded_on_open(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite3"
    idx = SqliteIndex(path)
    idx.upsert([doc("old.jpg", [("cat", 90.0, ())], embedding=[0.0, 1.0])])
    idx.close()
    raw = sqlite3.connect(path)
    (version,) = raw.execute("PRAGMA user_version").fetchone()
    step = _MIGRATIONS.index(VISUAL_SCHEMA)
    raw.executescript(  # the layout the step before this one left
        "DROP TABLE visual_embeddings;"
        " DELETE FROM meta WHERE key = 'visual_embeddings_generation';"
        f" PRAGMA user_version = {step};"
    )
    raw.close()
    idx = SqliteIndex(path)
    old = idx.get(document_id("b", "old.jpg"))
    assert old is not None and old.embedding == [0.0, 1.0] and old.visual_embedding is None
    idx.upsert([doc("new.jpg", [], visual_embedding=[1.0, 0.0, 0.0])])
    like = SearchQuery(vector=(1.0, 0.1, 0.0), vector_field="visual_embedding")
    assert [d.key for d in idx.search(like).documents] == ["new.jpg"]
    text = SearchQuery(vector=(0.0, 1.0))  # the text vectors are a separate table
    assert [d.key for d in idx.search(text).documents] == ["old.jpg"]
    idx.close()
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone() == (version,)
    raw.close()


def test_an_index_from_before_leaf_counts_is_upgraded_on_open(tmp_path: Path) -> None:
    import sqlite3

    from imagedex.documents import Label

    path = tmp_path / "old.sqlite3"
    idx = SqliteIndex(path)
    dog = doc("dog.jpg", [])
    dog.labels = [Label("Beagle", 60.0, ("Dog",)), Label("Dog", 95.0)]
    idx.upsert([dog, doc("cat.jpg", [("Cat", 90.0, ())])])
    idx.close()
    raw = sqlite3.connect(path)
    step = _MIGRATIONS.index(_count_leaves)
    raw.executescript(  # what the index looked like before leaf labels were counted
        "DROP INDEX label_counts_leaves; ALTER TABLE label_counts DROP COLUMN leaves;"
        " UPDATE label_terms SET is_label = 1 WHERE is_label = 2;"
        f" PRAGMA user_version = {step};"
    )
    raw.close()
    idx = SqliteIndex(path)
    assert {(c.label, c.count) for c in idx.top_labels(10)} == {("Beagle", 1), ("Cat", 1)}
    assert {(c.label, c.count) for c in idx.top_labels(10, parents=True)} == {
        ("Beagle", 1),
        ("Dog", 1),
        ("Cat", 1),
    }
    facets = idx.facets(SearchQuery(text="dog"))
    assert [(c.label, c.count) for c in facets.labels] == [("Beagle", 1)]
    idx.close()


def test_vector_field_must_be_known() -> None:
    with pytest.raises(ValueError, match="vector_field"):
        SearchQuery(vector=(1.0,), vector_field="title")


def test_an_index_from_before_the_leaf_label_index_gets_it_on_open(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite3"
    idx = SqliteIndex(path)
    idx.upsert(
        [
            doc("a.jpg", [("Beagle", 60.0, ("Dog",)), ("Ball", 50.0, ())]),
            doc("b.jpg", [("Beagle", 90.0, ("Dog",))]),
            doc("c.jpg", [("Cat", 90.0, ())]),
        ]
    )
    idx.close()
    raw = sqlite3.connect(path)
    # what the index looked like before facets had their leaf label index
    step = next(i for i, m in enumerate(_MIGRATIONS) if "label_terms_leaves" in str(m))
    raw.executescript(f"DROP INDEX label_terms_leaves; PRAGMA user_version = {step};")
    raw.close()
    idx = SqliteIndex(path)
    db = idx._db()
    assert db.execute("SELECT name FROM sqlite_master WHERE name = 'label_terms_leaves'").fetchone()
    # kept by every write: a reprocess that changes labels, a delete
    idx.upsert([doc("a.jpg", [("Beagle", 70.0, ("Dog",)), ("Bone", 40.0, ())])])
    idx.delete(document_id("b", "c.jpg"))
    facets = idx.facets(SearchQuery(labels=("dog",)))
    assert facets.total == 2
    assert [(c.label, c.count) for c in facets.labels] == [("Beagle", 2), ("Bone", 1)]
    plan = " ".join(
        str(row)
        for row in db.execute(
            "EXPLAIN QUERY PLAN SELECT t.term, COUNT(*) FROM label_terms t"
            " WHERE t.is_label = 2 AND t.confidence >= 0 GROUP BY t.term"
        )
    )
    assert "COVERING INDEX label_terms_leaves" in plan
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    idx.close()


def test_one_label_totals_come_from_term_counts_kept_by_every_write(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite3"
    idx = SqliteIndex(path)
    idx.upsert(
        [
            doc("a.jpg", [("Beagle", 60.0, ("Dog", "Animal")), ("Ball", 50.0, ())]),
            doc("b.jpg", [("Beagle", 90.0, ("Dog", "Animal"))]),
            doc("c.jpg", [("Cat", 90.0, ("Animal",))]),
        ]
    )
    idx.close()
    raw = sqlite3.connect(path)
    # what the index looked like before term counts
    step = _MIGRATIONS.index(_term_counts)
    raw.executescript(f"DROP TABLE term_counts; PRAGMA user_version = {step};")
    raw.close()
    idx = SqliteIndex(path)
    db = idx._db()

    def counted() -> dict[str, int]:
        kept = dict(db.execute("SELECT term, count FROM term_counts").fetchall())
        assert kept == dict(
            db.execute("SELECT term, COUNT(*) FROM label_terms GROUP BY term").fetchall()
        )
        return kept

    assert counted() == {"beagle": 2, "dog": 2, "animal": 3, "ball": 1, "cat": 1}
    idx.upsert([doc("a.jpg", [("Cat", 70.0, ("Animal",))])])  # a reprocess changes labels
    idx.upsert([doc("d.jpg", [("Beagle", 30.0, ("Dog", "Animal"))])])
    idx.delete(document_id("b", "b.jpg"))
    assert counted() == {"beagle": 1, "dog": 1, "animal": 3, "cat": 2}
    assert idx.search(SearchQuery(labels=("animal",))).total == 3
    assert idx.search(SearchQuery(labels=("ball",))).total == 0
    # the counter is what answers: a total it holds is the total given
    db.execute("UPDATE term_counts SET count = 99 WHERE term = 'dog'")
    assert idx.search(SearchQuery(labels=("dog",))).total == 99
    assert idx.search(SearchQuery(labels=("dog",), min_confidence=10)).total == 1
    idx.close()
