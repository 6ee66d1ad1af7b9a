"""The column cache's facets (imagedex.index.sqlite_columns) are the SQL plan's facets, stay
fresh when another connection writes, and step aside when over their memory cap."""

import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from conftest import make_document
from imagedex.documents import ImageDocument, SearchQuery, document_id
from imagedex.index import sqlite_columns
from imagedex.index.sqlite import _MIGRATIONS, SqliteIndex

N = 2500
WORDS = ("sun", "sea", "sky", "red", "car", "tree", "city", "night")
LEAVES = [f"leaf{i:02d}" for i in range(40)]
PARENTS = ("animal", "thing", "Place")


def _doc(i: int, rng: random.Random, bucket: str = "b") -> ImageDocument:
    labels = [
        (name, round(rng.uniform(0, 100), 2), tuple(rng.sample(PARENTS, rng.randint(0, 2))))
        for name in rng.sample(LEAVES, rng.choice([0, 1, 2, 3, 3, 4]))
    ]
    if labels and rng.random() < 0.2:  # a label that is another's parent: not a leaf
        labels.append(("animal", rng.uniform(0, 100), ()))
    moderation = []
    if rng.random() < 0.15:
        moderation = [
            {"label": rng.choice(["Suggestive", "Violence"]), "confidence": c}
            for c in (rng.uniform(0, 100), rng.uniform(0, 100))
        ]
    day = rng.choice([rng.randint(1, 28), 3])  # one busy day
    return make_document(
        f"img{i:05d}.jpg",
        labels,
        bucket=bucket,
        title=" ".join(rng.sample(WORDS, 3)),
        ingested_at=f"2025-{rng.randint(1, 12):02d}-{day:02d}T{rng.randint(0, 23):02d}:"
        f"{rng.randint(0, 59):02d}:00+02:00",
        moderation=moderation,
    )


def _query(rng: random.Random) -> SearchQuery:
    terms = tuple(rng.sample([*LEAVES[:8], *PARENTS, "Animal", "nothing"], rng.randint(0, 3)))
    return SearchQuery(
        labels=terms,
        match_all_labels=rng.random() < 0.5,
        min_confidence=rng.choice([0.0, 0.0, 20.0, 55.5]),
        text=rng.choice([None, None, "sun", "se", "sky red"]),
        moderation=rng.choice(["", "", "safe", "unsafe"]),
        unsafe_threshold=rng.choice([50.0, 30.0]),
        date_from=rng.choice([None, "2025-03-01", "2025-06-03T10:00:00Z"]),
        date_to=rng.choice([None, "2025-10-01"]),
    )


def _facets(index: SqliteIndex, query: SearchQuery, interval: str = "day") -> Any:
    return index.facets(query, labels=15, interval=interval)


def _arrays_only(monkeypatch: pytest.MonkeyPatch, index: SqliteIndex) -> None:
    """Every filtered count of `index` must come from the arrays: its SQL plan raises."""

    def boom(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the SQL plan counted")

    monkeypatch.setattr(sqlite_columns, "MIN_SHARE", 0.0)
    monkeypatch.setattr(index, "_facet_counts", boom)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("columns") / "index.sqlite3"
    rng = random.Random(18)
    idx = SqliteIndex(path, facet_cache_mb=0)
    docs = [_doc(i, rng) for i in range(N)]
    for start in range(0, N, 500):
        idx.upsert(docs[start : start + 500])
    idx.close()
    return path


def _copy(built: Path, tmp_path: Path) -> Path:
    source = sqlite3.connect(built)
    target = sqlite3.connect(tmp_path / "index.sqlite3")
    source.backup(target)
    source.close()
    target.close()
    return tmp_path / "index.sqlite3"


def _expected(path: Path, query: SearchQuery, interval: str = "day") -> Any:
    """The SQL plan's answer, by an index whose cache is off."""
    reference = SqliteIndex(path, facet_cache_mb=0)
    try:
        return _facets(reference, query, interval)
    finally:
        reference.close()


def test_facets_from_the_arrays_equal_the_sql_plan_on_random_queries(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = SqliteIndex(built, facet_cache_mb=0)
    rng = random.Random(7)
    queries = [(_query(rng), rng.choice(["day", "week", "month", "hour"])) for _ in range(60)]
    expected = [_facets(reference, q, interval) for q, interval in queries]
    assert sum(e.total > 100 for e in expected) > 20  # most queries match many images
    assert any(e.moderation.labels for e in expected)
    cached = SqliteIndex(built)
    cached.facet_columns.build()
    assert cached.facet_columns.refused == ""
    _arrays_only(monkeypatch, cached)
    for (query, interval), want in zip(queries, expected, strict=True):
        assert _facets(cached, query, interval) == want, query
    cached.close()
    reference.close()


def test_writes_by_another_connection_are_seen_by_the_next_facets(
    built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _copy(built, tmp_path)
    reader = SqliteIndex(path)
    reader.facet_columns.build()
    _arrays_only(monkeypatch, reader)
    writer = SqliteIndex(path)  # another connection (as the worker's process has)
    rng = random.Random(3)
    broad = [
        SearchQuery(labels=("animal",)),
        SearchQuery(text="sun"),
        SearchQuery(labels=("leaf01", "leaf02"), match_all_labels=False),
    ]

    def same() -> None:
        for query in broad:
            assert _facets(reader, query) == _expected(path, query)

    same()
    before = _facets(reader, broad[0])
    # a new image, a reprocess with other labels, a delete
    writer.upsert([_doc(N + 1, rng, bucket="new")])
    writer.upsert(
        [
            make_document(
                "img00001.jpg",
                [("leaf01", 99.0, ("animal",))],
                moderation=[{"label": "Violence", "confidence": 90.0}],
                ingested_at="2025-04-03T10:00:00Z",
            )
        ]
    )
    assert writer.delete(document_id("b", "img00002.jpg"))
    after = _facets(reader, broad[0])
    assert after != before
    same()
    assert reader.facet_columns._base is not None  # the base was patched, not rebuilt
    assert (
        reader.facet_columns._base.seq
        < writer._db().execute("SELECT MAX(seq) FROM doc_changes").fetchone()[0]
    )
    writer.close()
    reader.close()


def test_many_changes_rebuild_the_base_and_sql_answers_meanwhile(
    built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _copy(built, tmp_path)
    monkeypatch.setattr(sqlite_columns, "OVERLAY_LIMIT", 5)
    monkeypatch.setattr(sqlite_columns, "MIN_SHARE", 0.0)
    reader = SqliteIndex(path)
    reader.facet_columns.build()
    old = reader.facet_columns._base
    writer = SqliteIndex(path)
    rng = random.Random(4)
    writer.upsert([_doc(N + i, rng, bucket="more") for i in range(10)])
    query = SearchQuery(labels=("thing",))
    assert _facets(reader, query) == _expected(path, query)  # SQL, while the base is rebuilt
    reader.facet_columns.wait(60)
    assert reader.facet_columns._base is not old
    assert _facets(reader, query) == _expected(path, query)
    writer.close()
    reader.close()


def test_an_index_from_before_the_change_log_gets_it_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    idx = SqliteIndex(path, facet_cache_mb=0)
    idx.upsert(
        [make_document("a.jpg", [("Beagle", 60.0, ("Dog",))], ingested_at="2025-01-02T03:04:05Z")]
    )
    idx.close()
    raw = sqlite3.connect(path)
    step = _MIGRATIONS.index(sqlite_columns.SCHEMA)
    raw.executescript(f"DROP TABLE doc_changes; PRAGMA user_version = {step};")
    raw.close()
    idx = SqliteIndex(path)
    idx.facet_columns.build()
    assert idx.facet_columns._base is not None and idx.facet_columns._base.seq == 0
    idx.upsert(
        [make_document("b.jpg", [("Beagle", 90.0, ("Dog",))], ingested_at="2025-01-02T03:04:05Z")]
    )
    (logged,) = idx._db().execute("SELECT COUNT(*) FROM doc_changes").fetchone()
    assert logged == 1
    facets = _facets(idx, SearchQuery(labels=("dog",)))
    assert facets.total == 2 and facets == _expected(path, SearchQuery(labels=("dog",)))
    idx.close()


def test_over_the_memory_cap_sql_counts(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    idx = SqliteIndex(built, facet_cache_mb=0.01)  # 10 kB: less than 2500 images need
    idx.facet_columns.build()
    assert idx.facet_columns._base is None
    assert "over the cap" in idx.facet_columns.refused
    monkeypatch.setattr(sqlite_columns, "MIN_SHARE", 0.0)
    query = SearchQuery(labels=("animal",))
    assert _facets(idx, query) == _expected(built, query)
    assert idx.facet_columns._base is None and idx.facet_columns._building is None
    idx.close()


def test_the_setting_caps_the_cache_of_an_opened_index(tmp_path: Path) -> None:
    from imagedex.config import Settings
    from imagedex.index import open_index

    off = open_index("sqlite", tmp_path, Settings(data_dir=tmp_path, index_facet_cache_mb=0))
    assert isinstance(off, SqliteIndex) and off.facet_columns.refused == "turned off (0 MB)"
    small = open_index("sqlite", tmp_path, Settings(data_dir=tmp_path, index_facet_cache_mb=2))
    assert isinstance(small, SqliteIndex) and small.facet_columns.cap_bytes == 2 * 2**20
    off.close()
    small.close()


def test_closing_the_index_stops_a_background_build_first(built: Path) -> None:
    idx = SqliteIndex(built)
    idx.facet_columns.start_build()
    idx.close()  # its connections close only after the build thread ended
    thread = idx.facet_columns._building
    assert thread is not None and not thread.is_alive()
    idx.facet_columns.start_build()  # a closed index starts none
    assert idx.facet_columns._building is thread
