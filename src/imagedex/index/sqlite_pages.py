"""One page of SQLite search results found without ordering every match.

The general plan (imagedex.index.sqlite) gathers every matching image, joins each to its `docs`
row and sorts them all: at a million images a broad label or a frequent word means hundreds of
thousands of rows for a page of 20. Two plans here give the same page, in the same order, for
far less:

- `walk_page`: walk `docs` in the sort's own index (date or title) and keep the rows whose label
  rows match, probed per row through the label_terms doc index; for a label on a large share of
  the images the page is found after a few dozen probes. The walk has a budget (SQLite VM steps)
  so that matches bunched at the far end of the order cost no more than the general plan: past
  it the walk gives up and the caller falls back.
- `ranked_text_page`: let FTS5 rank the matches (bm25, computed inside FTS5 as before), keeping
  only the best page plus a margin while it scores, and read the page plus every match tied with
  its last score (all the matches again when those ties run past the margin); only those rows
  are joined to `docs` for the tie-breaks (newest first, then id).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import numpy as np

#: ORDER BY of each non-relevance sort: each follows an index of `docs` (date or title) whose
#: first column a walk can follow, with `id` breaking ties among equal values
SORT_ORDER = {
    "newest": "d.ingested_at DESC, d.id",
    "oldest": "d.ingested_at ASC, d.id",
    "title": "d.title_lower ASC, d.id",
}

#: matches past the page kept by the ranked plan's bounded sort, so that ties with the page's
#: last score end inside it (measured at 1M: a bound of 20,000 costs 10-15 % more than one of
#: 88, and 1,000 left 1 of 60 frequent words and prefixes with ties past it, 64 left 6)
_TIE_MARGINS = (1000, 20_000)
#: SQLite calls the progress handler every this many VM instructions
_STEP = 1000
#: VM instructions a walk may spend per `docs` row the general plan would join (measured: a
#: probed row costs about 60-90 instructions; joining and sorting a matched row costs more)
_STEPS_PER_MATCH = 100


class _OverBudget(Exception):
    pass


def walk_page(
    db: sqlite3.Connection,
    sort: str,
    conditions: Sequence[str],
    params: Sequence[Any],
    limit: int,
    offset: int,
    matches: int,
) -> list[str] | None:
    """Bodies of the page, walking `docs` in `sort`'s order and keeping rows for which every
    condition (SQL over the `docs` alias `d`) holds; None when the walk ran past its budget,
    which is in proportion to `matches` (how many rows the general plan would sort)."""
    order = SORT_ORDER[sort]
    where = " AND ".join(conditions) if conditions else "1"
    budget = max(50_000, matches * _STEPS_PER_MATCH) // _STEP
    calls = 0

    def progress() -> int:
        nonlocal calls
        calls += 1
        return 1 if calls > budget else 0

    db.set_progress_handler(progress, _STEP)
    try:
        rows = db.execute(
            f"SELECT d.rowid FROM docs d WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",
            [*params, limit, offset],
        ).fetchall()
    except sqlite3.OperationalError:
        if calls > budget:  # interrupted by the budget, not some other failure
            return None
        raise
    finally:
        db.set_progress_handler(None, _STEP)
    return bodies(db, [r[0] for r in rows])


def ranked_text_page(
    db: sqlite3.Connection,
    match: str,
    limit: int,
    offset: int,
    scored: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[str]:
    """Bodies of the page for an FTS5 `match` alone, ordered as the general plan orders it:
    bm25 best first, then newest, then id. `scored`: every match's (rowid, -bm25) when
    sqlite_text computed them (the same doubles); FTS5 ranks them otherwise."""
    wanted = offset + limit
    picked = None
    if scored is not None:
        picked = _best_scored(scored, wanted)
    margins = (*_TIE_MARGINS, None) if picked is None else ()
    for margin in margins:  # wider while the ties with the page's last score
        picked = _best_rows(db, match, wanted, None if margin is None else wanted + margin)
        if picked is not None:  # run past the bound; unbounded, every match is read
            break
    picked = picked or []
    if not picked:
        return []
    score = dict(picked)
    keys = _sort_keys(db, list(score))
    # the general plan's ORDER BY score DESC, ingested_at DESC, id; each sort is stable
    ordered = sorted(keys, key=lambda k: k[2])
    ordered.sort(key=lambda k: k[1], reverse=True)
    ordered.sort(key=lambda k: score[k[0]], reverse=True)
    return bodies(db, [k[0] for k in ordered[offset:wanted]])


def _best_rows(
    db: sqlite3.Connection, match: str, wanted: int, bound: int | None
) -> list[tuple[int, float]] | None:
    """The `wanted` best matches (rowid, score) plus every match tied with the last of them.
    With a `bound`, SQLite keeps only that many best while it scores (a sorter of `bound` rows
    instead of sorting every match: half the time for a prefix on most of a million images);
    None when the matches tied with the wanted-th may not all be among them."""
    sql = (
        "SELECT rowid, -bm25(docs_fts) FROM docs_fts WHERE docs_fts MATCH ? ORDER BY bm25(docs_fts)"
    )
    cursor = db.execute(sql + " LIMIT ?", (match, bound)) if bound else db.execute(sql, (match,))
    try:
        picked: list[tuple[int, float]] = cursor.fetchmany(wanted)
        if len(picked) < wanted:
            return picked
        last = picked[-1][1]
        rest = 0
        for row in cursor:
            rest += 1
            if row[1] != last:
                return picked
            picked.append(row)
    finally:
        cursor.close()
    # every match was read: the ties are complete unless the bound cut the matches short
    return None if bound and wanted + rest == bound else picked


def _best_scored(scored: tuple[np.ndarray, np.ndarray], wanted: int) -> list[tuple[int, float]]:
    """The `wanted` best (rowid, score) plus every match tied with the last of them."""
    rowids, score = scored
    if len(rowids) > wanted:
        last = np.partition(score, len(score) - wanted)[len(score) - wanted]
        keep = score >= last
        rowids, score = rowids[keep], score[keep]
    return list(zip(rowids.tolist(), score.tolist(), strict=True))


def _sort_keys(db: sqlite3.Connection, rowids: list[int]) -> list[tuple[int, str, str]]:
    rows = db.execute(
        "SELECT rowid, ingested_at, id FROM docs WHERE rowid IN (SELECT value FROM json_each(?))",
        (_json_ints(rowids),),
    ).fetchall()
    return [(int(r), str(at), str(i)) for r, at, i in rows]


def bodies(db: sqlite3.Connection, rowids: list[int]) -> list[str]:
    """The JSON bodies of `rowids`, in that order."""
    if not rowids:
        return []
    found = dict(
        db.execute(
            "SELECT rowid, body FROM docs WHERE rowid IN (SELECT value FROM json_each(?))",
            (_json_ints(rowids),),
        ).fetchall()
    )
    return [found[r] for r in rowids if r in found]


def _json_ints(values: list[int]) -> str:
    return "[" + ",".join(str(int(v)) for v in values) + "]"
