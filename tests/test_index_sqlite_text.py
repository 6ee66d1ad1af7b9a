"""Plain-word text queries answered from sqlite_text's postings give FTS5's answers: the same
bm25 doubles, totals, pages (ties included) and facets, and never a stale answer after
another connection writes."""

import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from conftest import make_document
from imagedex.documents import ImageDocument, SearchQuery, document_id
from imagedex.index import sqlite_columns, sqlite_pages, sqlite_text
from imagedex.index.sqlite import SqliteIndex, fts_query

N = 2500
# Zipf-like: a few words on most images (their idf clamped to 1e-6), many rare ones
WORDS = [f"{stem}{i}" for stem in ("sun", "sea", "sky", "salt", "car", "tree") for i in range(8)]
WORDS += ["sun", "sea", "sky", "red", "city", "night", "s", "se", "café", "über"]
LEAVES = [f"leaf{i:02d}" for i in range(12)]


def _words(rng: random.Random, n: int) -> list[str]:
    return [WORDS[min(int(rng.paretovariate(0.8)) - 1, len(WORDS) - 1)] for _ in range(n)]


def _doc(i: int, rng: random.Random, bucket: str = "b") -> ImageDocument:
    labels = [(name, rng.uniform(0, 100), ()) for name in rng.sample(LEAVES, rng.randint(0, 2))]
    return make_document(
        f"img{i:05d}.jpg",
        labels,
        bucket=bucket,
        title=" ".join(_words(rng, rng.randint(0, 4))),
        text=[" ".join(_words(rng, rng.randint(0, 12)))] if rng.random() < 0.5 else [],
        # few distinct times: ties in score fall to the date, then the id
        ingested_at=f"2025-0{rng.randint(1, 3)}-01T00:00:00Z",
    )


def _text(rng: random.Random) -> str:
    word = rng.choice(WORDS)
    shape = rng.randint(0, 4)
    if shape == 0:
        return word
    if shape == 1:
        return word[: rng.randint(1, 4)]
    if shape == 2:
        return f"{rng.choice(WORDS)} {word[: rng.randint(1, 3)]}"
    if shape == 3:
        return f"{rng.choice(WORDS)} {rng.choice(WORDS)} {word}"
    return rng.choice(["S", "Sun-Sea", "sk", "zzz", "café", "sun_se", "a b", "se se"])


def _query(rng: random.Random) -> SearchQuery:
    return SearchQuery(
        text=_text(rng),
        labels=tuple(rng.sample(LEAVES[:3], 1)) if rng.random() < 0.15 else (),
        date_from=rng.choice([None, None, None, "2025-02-01"]),
        sort=rng.choice(["relevance"] * 4 + ["newest"]),
        limit=rng.choice([1, 5, 24]),
        offset=rng.choice([0, 0, 3, 40]),
        track_total=rng.choice([0, 0, 100]),
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("text") / "index.sqlite3"
    rng = random.Random(19)
    idx = SqliteIndex(path, facet_cache_mb=0)
    docs = [_doc(i, rng) for i in range(N)]
    for start in range(0, N, 500):
        idx.upsert(docs[start : start + 500])
    idx.close()
    return path


def _answer(index: SqliteIndex, query: SearchQuery) -> tuple[Any, ...]:
    result = index.search(query)
    facets = index.facets(query, labels=5, interval="month")
    return result.total, result.total_is_lower_bound, [d.id for d in result.documents], facets


def _no_fts_ranking(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """FTS5's ranking raises while the returned switch is on."""
    switch = {"on": False}
    real = sqlite_pages._best_rows

    def guarded(*args: Any, **kwargs: Any) -> Any:
        assert not switch["on"], "FTS5 ranked a plain-word query"
        return real(*args, **kwargs)

    monkeypatch.setattr(sqlite_pages, "_best_rows", guarded)
    return switch


def test_scores_are_fts5_bm25_doubles(built: Path) -> None:
    idx = SqliteIndex(built)
    idx.text_postings.build()
    db = idx._db()
    index = idx.text_postings.current(db)
    assert index is not None
    for text in ["sun", "s", "se", "sk", "salt3", "sea sun", "sun0 s", "red city ni", "zzz"]:
        match = fts_query(text)
        assert match is not None
        phrases = sqlite_text.plain_phrases(match)
        assert phrases is not None, text
        rowids, scores = sqlite_text.scores(index, phrases)
        want = db.execute(
            "SELECT rowid, -bm25(docs_fts) FROM docs_fts WHERE docs_fts MATCH ? ORDER BY rowid",
            (match,),
        ).fetchall()
        assert list(zip(rowids.tolist(), scores.tolist(), strict=True)) == want, text
    assert sqlite_text.plain_phrases(fts_query("café s") or "") is None
    idx.close()


def test_random_queries_equal_the_fts5_path(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(5)
    queries = [_query(rng) for _ in range(150)]
    reference = SqliteIndex(built, facet_cache_mb=0)  # no postings: FTS5 answers
    expected = [_answer(reference, q) for q in queries]
    reference.close()
    assert sum(e[0] > 500 for e in expected) >= 5  # some match most images
    idx = SqliteIndex(built)
    idx.text_postings.build()
    idx.facet_columns.build()  # facets from the arrays, the text's rows from the postings
    monkeypatch.setattr(sqlite_columns, "MIN_SHARE", 0.0)
    assert idx.text_postings.refused == ""
    switch = _no_fts_ranking(monkeypatch)
    fast = 0
    for query, want in zip(queries, expected, strict=True):
        plain = sqlite_text.plain_phrases(fts_query(query.text or "") or "")
        simple = not query.labels and not query.date_from and query.sort == "relevance"
        switch["on"] = plain is not None and simple
        fast += switch["on"]
        assert _answer(idx, query) == want, query
    assert fast > 60
    idx.close()


def test_a_write_by_another_connection_is_never_answered_stale(
    built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_text, "REBUILD_IDLE", 0)  # a rebuild at once
    source = sqlite3.connect(built)
    target = sqlite3.connect(tmp_path / "index.sqlite3")
    source.backup(target)
    source.close()
    target.close()
    path = tmp_path / "index.sqlite3"
    reader = SqliteIndex(path)
    reader.text_postings.build()
    writer = SqliteIndex(path)
    query = SearchQuery(text="sun", limit=5)
    before = reader.search(query)
    writer.upsert(
        [make_document("new.jpg", title="sun sun sun", ingested_at="2025-05-01T00:00:00Z")]
    )
    assert writer.delete(document_id("b", before.documents[0].key))
    reference = SqliteIndex(path, facet_cache_mb=0)
    want = reference.search(query)
    assert want.documents != before.documents  # a stale answer would be `before`
    assert reader.search(query) == want
    reader.text_postings.wait(60)  # the write started a rebuild
    index = reader.text_postings.current(reader._db())
    assert index is not None
    assert reader.search(query) == want
    reference.close()
    writer.close()
    reader.close()
