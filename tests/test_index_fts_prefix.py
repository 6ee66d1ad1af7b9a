"""The text index with prefix indexes: an index from before gets them on open, and every text
or prefix query answers exactly as the table without them did (same total, ids, order)."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from conftest import make_document
from imagedex.documents import ImageDocument, SearchQuery
from imagedex.index import sqlite_pages
from imagedex.index.sqlite import _MIGRATIONS, SqliteIndex, _prefix_fts, fts_query

SYLLABLES = ("ba", "be", "sha", "shi", "lo", "lu", "ma", "mo", "ta", "tri", "s", "x")
N = 2000


def _doc(i: int, rng: random.Random) -> ImageDocument:
    words = [
        "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3)))
        for _ in range(rng.randint(2, 5))
    ]
    label = rng.choice(("dog", "cat", "boat", "bottle", "shoe"))
    return make_document(
        f"{i}.jpg",
        [(label, float(rng.randint(1, 99)), ("thing",))],
        title=" ".join(words),
        text=rng.sample(words, 1) if i % 5 == 0 else [],
        ingested_at=f"2026-0{1 + i % 9}-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
    )


def _queries(rng: random.Random) -> list[SearchQuery]:
    queries = []
    for _ in range(60):
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3)))
        text = word[: rng.randint(1, 4)]
        if rng.random() < 0.3:
            text = f"{rng.choice(SYLLABLES)}{rng.choice(SYLLABLES)} {text}"
        extra: dict = {}  # type: ignore[type-arg]
        roll = rng.random()
        if roll < 0.15:
            extra["labels"] = ("thing",)
        elif roll < 0.3:
            extra["sort"] = "newest"
        elif roll < 0.4:
            extra["offset"] = 24
        queries.append(SearchQuery(text=text, limit=24, **extra))
    return queries


def _answers(index: SqliteIndex, queries: list[SearchQuery]) -> list[tuple[int, list[str]]]:
    out = []
    for query in queries:
        result = index.search(query)
        out.append((result.total, [d.id for d in result.documents]))
    return out


def _fts_sql(path: Path) -> str:
    raw = sqlite3.connect(path)
    (sql,) = raw.execute("SELECT sql FROM sqlite_master WHERE name = 'docs_fts'").fetchone()
    raw.close()
    return str(sql)


def test_an_old_text_index_gets_prefix_indexes_and_answers_the_same(tmp_path: Path) -> None:
    rng = random.Random(5)
    path = tmp_path / "old.sqlite3"
    index = SqliteIndex(path)
    index.upsert([_doc(i, rng) for i in range(N)])
    index.close()
    assert "prefix = '1 2 3'" in _fts_sql(path)
    # the text index as it was before (no prefix indexes), the file otherwise up to date
    raw = sqlite3.connect(path)
    raw.executescript(
        "CREATE VIRTUAL TABLE old_fts USING fts5(title, labels, text,"
        " tokenize = 'unicode61 remove_diacritics 2');"
        " INSERT INTO old_fts (rowid, title, labels, text)"
        " SELECT rowid, title, labels, text FROM docs_fts;"
        " DROP TABLE docs_fts; ALTER TABLE old_fts RENAME TO docs_fts;"
    )
    raw.close()
    queries = _queries(rng)
    index = SqliteIndex(path)
    before = _answers(index, queries)
    index.close()
    assert sum(1 for total, _ in before if total > 24) > 10  # broad prefixes among them
    assert sum(1 for total, _ in before if total == 0) < 30
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {_MIGRATIONS.index(_prefix_fts)}")
    raw.commit()
    raw.close()
    index = SqliteIndex(path)  # the migration runs on open
    assert "prefix" in _fts_sql(path)
    assert _answers(index, queries) == before
    # writes after the migration reach the new table
    index.upsert([make_document("new.jpg", [("dog", 50.0, ())], title="zyzzyva")])
    assert index.search(SearchQuery(text="zy")).total == 1
    index.close()


def test_text_pages_rank_within_a_bound_and_match_the_definition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(9)
    index = SqliteIndex(tmp_path / "index.sqlite3")
    docs = [_doc(i, rng) for i in range(N)]
    # a tie group past both bounds (made small here): these matches have this title alone
    monkeypatch.setattr(sqlite_pages, "_TIE_MARGINS", (64, 300))
    docs += [make_document(f"tie{i}.jpg", title="qqtie") for i in range(600)]
    index.upsert(docs)
    bounded: list[bool] = []
    real = sqlite_pages._best_rows

    def spy(db: sqlite3.Connection, match: str, wanted: int, bound: int | None) -> object:
        found = real(db, match, wanted, bound)
        if bound:
            bounded.append(found is not None)
        return found

    monkeypatch.setattr(sqlite_pages, "_best_rows", spy)
    queries = [q for q in _queries(rng) if not q.labels and q.sort == "relevance"]
    queries += [SearchQuery(text="qqtie", limit=24), SearchQuery(text="qqt", offset=24)]
    for query in queries:
        expected = index._db().execute(
            "SELECT d.id FROM docs_fts f JOIN docs d ON d.rowid = f.rowid"
            " WHERE docs_fts MATCH ? ORDER BY bm25(docs_fts), d.ingested_at DESC, d.id"
            " LIMIT ? OFFSET ?",
            (fts_query(query.text or ""), query.limit, query.offset),
        )
        got = [d.id for d in index.search(query).documents]
        assert got == [r[0] for r in expected], query
    assert bounded.count(True) > 20  # most pages came from the bounded sort
    assert bounded[-4:] == [False] * 4  # past both bounds: the long ties were read in full
    index.close()
