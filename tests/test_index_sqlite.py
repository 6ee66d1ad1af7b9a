from pathlib import Path

import pytest

from imagedex.documents import ImageDocument, Label, SearchQuery, document_id
from imagedex.index.sqlite import SqliteIndex, fts_query


def doc(
    key: str, labels: list[tuple[str, float, tuple[str, ...]]], **extra: object
) -> ImageDocument:
    return ImageDocument(
        id=document_id("b", key),
        bucket="b",
        key=key,
        title=str(extra.pop("title", key)),
        s3_location=f"s3://b/{key}",
        ingested_at=str(extra.pop("ingested_at", "2026-01-01T00:00:00Z")),
        labels=[Label(name, conf, parents) for name, conf, parents in labels],
        text=list(extra.pop("text", [])),  # type: ignore[call-overload]
    )


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
