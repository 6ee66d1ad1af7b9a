"""The SQLite index's quick page plans (imagedex.index.sqlite_pages) give the general plan's
page: same rows, same order, ties included, and are the plans that answer broad queries."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import make_document
from imagedex.documents import ImageDocument, SearchQuery
from imagedex.index import sqlite_pages
from imagedex.index.sqlite import SqliteIndex

N = 3000
BUNCHED = 600  # "early" is on the oldest images only


def _doc(i: int) -> ImageDocument:
    labels: list[tuple[str, float, tuple[str, ...]]] = [
        ("common", float(50 + i % 3), ("thing",))  # few confidences: many ties
    ]
    if i % 2 == 0:
        labels.append(("half", 60.0 + i % 7, ("thing",)))
    if i < BUNCHED:
        labels.append(("early", 70.0, ()))
    second = (i // 2) % 60  # two images per second: ties broken by id
    return make_document(
        f"img{i:05d}.jpg",
        labels,
        title="sun " + " ".join(["sea"] * (i % 3)) + f" w{i % 5}",  # few bm25 scores: ties
        ingested_at=f"2026-01-01T00:{(i // 2) // 60:02d}:{second:02d}Z",
        moderation=[{"label": "Suggestive", "confidence": 80.0, "parent": ""}]
        if i % 10 == 0
        else [],
    )


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteIndex]:
    idx = SqliteIndex(tmp_path_factory.mktemp("pages") / "index.sqlite3")
    for start in range(0, N, 500):
        idx.upsert(DOCS[start : start + 500])
    yield idx
    idx.close()


@pytest.fixture
def plans(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[bool]]:
    """Which quick plan ran, and whether it answered (True) or handed back (False)."""
    used: dict[str, list[bool]] = {"walk": [], "ranked": []}

    def spy(name: str, real: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = real(*args, **kwargs)
            used[name].append(result is not None)
            return result

        return wrapper

    monkeypatch.setattr(sqlite_pages, "walk_page", spy("walk", sqlite_pages.walk_page))
    monkeypatch.setattr(
        sqlite_pages, "ranked_text_page", spy("ranked", sqlite_pages.ranked_text_page)
    )
    return used


DOCS = [_doc(i) for i in range(N)]


def _expected_labels(query: SearchQuery, n: int = N) -> list[str]:
    """The page by the definition: images with the label (or a parent) at the confidence,
    filtered, in the sort's order."""
    found = []
    for doc in DOCS[:n]:
        terms = {t: lb.confidence for lb in doc.labels for t in lb.terms()}
        have = [t for t in query.labels if terms.get(t, -1) >= query.min_confidence]
        if len(have) < (len(query.labels) if query.match_all_labels else 1):
            continue
        if query.moderation == "unsafe" and doc.unsafe_confidence < query.unsafe_threshold:
            continue
        found.append(doc)
    found.sort(key=lambda d: d.id)
    if query.sort == "title":
        found.sort(key=lambda d: d.title.lower())
    else:
        found.sort(key=lambda d: d.ingested_at, reverse=query.sort == "newest")
    return [d.id for d in found[query.offset : query.offset + query.limit]]


def _ids(index: SqliteIndex, query: SearchQuery) -> list[str]:
    return [d.id for d in index.search(query).documents]


@pytest.mark.parametrize(
    "query",
    [
        SearchQuery(labels=("common",), sort="newest", limit=7),
        SearchQuery(labels=("thing",), sort="oldest", limit=5, offset=11),
        SearchQuery(labels=("half",), sort="title", limit=6, offset=3),
        SearchQuery(labels=("common",), sort="newest", min_confidence=52, limit=9, offset=4),
        SearchQuery(labels=("half", "common"), sort="newest", limit=5),
        SearchQuery(labels=("half", "early"), match_all_labels=False, sort="newest", limit=5),
        SearchQuery(labels=("common",), sort="newest", moderation="unsafe", limit=4),
    ],
    ids=["newest", "parent-oldest", "title", "confidence", "all", "any", "unsafe"],
)
def test_broad_label_pages_walk_the_sort_order(
    index: SqliteIndex, plans: dict[str, list[bool]], query: SearchQuery
) -> None:
    assert _ids(index, query) == _expected_labels(query)
    assert plans["walk"] == [True]


def test_matches_bunched_at_the_far_end_fall_back_to_the_general_plan(
    index: SqliteIndex, plans: dict[str, list[bool]]
) -> None:
    query = SearchQuery(labels=("early",), sort="newest", limit=5)
    result = index.search(query)
    assert result.total == BUNCHED
    assert [d.id for d in result.documents] == _expected_labels(query)
    assert plans["walk"] == [False]  # the walk gave up within its budget


def test_few_matches_take_the_general_plan(
    index: SqliteIndex, plans: dict[str, list[bool]], tmp_path: Path
) -> None:
    small = SqliteIndex(tmp_path / "small.sqlite3")
    small.upsert(DOCS[:40])
    query = SearchQuery(labels=("half",), sort="newest", limit=30)
    assert [d.id for d in small.search(query).documents] == _expected_labels(query, 40)
    assert plans["walk"] == []
    small.close()


def _expected_text(index: SqliteIndex, match: str, limit: int, offset: int) -> list[str]:
    """The general plan's order, written out: bm25 best first, then newest, then id."""
    rows = (
        index._db()
        .execute(
            "SELECT d.id FROM docs_fts f JOIN docs d ON d.rowid = f.rowid"
            " WHERE docs_fts MATCH ? ORDER BY bm25(docs_fts), d.ingested_at DESC, d.id"
            " LIMIT ? OFFSET ?",
            (match, limit, offset),
        )
        .fetchall()
    )
    return [r[0] for r in rows]


@pytest.mark.parametrize(
    ("text", "limit", "offset"), [("sun", 5, 0), ("sun", 7, 990), ("sea", 3, 2), ("w", 24, 0)]
)
def test_text_is_ranked_inside_fts_with_its_ties(
    index: SqliteIndex, plans: dict[str, list[bool]], text: str, limit: int, offset: int
) -> None:
    result = index.search(SearchQuery(text=text, limit=limit, offset=offset))
    assert [d.id for d in result.documents] == _expected_text(index, f'"{text}"*', limit, offset)
    assert result.total == index.search(SearchQuery(text=text, moderation="")).total
    assert plans["ranked"] == [True, True]


def test_filtered_or_deep_text_takes_the_general_plan(
    index: SqliteIndex, plans: dict[str, list[bool]]
) -> None:
    deep = index.search(SearchQuery(text="sun", limit=5, offset=2000))
    assert [d.id for d in deep.documents] == _expected_text(index, '"sun"*', 5, 2000)
    unsafe = index.search(SearchQuery(text="sun", moderation="unsafe", limit=5))
    assert unsafe.total == N // 10
    assert plans["ranked"] == []
