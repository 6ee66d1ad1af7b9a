"""Plain-word text queries matched and bm25-ranked in numpy, with FTS5's own numbers.

FTS5 computes bm25 for every match before it can rank them (about 0.75 us each): a frequent
word or a 1-3 character prefix on most of a million images costs 250-770 ms. This module keeps
a copy of docs_fts' inverted index in memory, read from FTS5 itself (fts5vocab: every term and
its instances), and answers the query shape `fts_query` makes from plain ASCII words (every word
a phrase of one token, the last one a prefix) with the same matches and the same doubles as
FTS5's bm25 (fts5_aux.c: per phrase, f = instances in the row, D = the row's tokens,
avgdl = tokens / rows, idf = log((N - nHit + 0.5) / (nHit + 0.5)), at least 1e-6; evaluated
in FTS5's order). Anything else, an index not built yet or one changed since its build goes
to FTS5: the copy is fresh only as of the change log's last seq (doc_changes) it was read with,
and a write starts a rebuild in the background (spaced so that rebuilds under steady
writes take about a tenth of a core). Built by itself from the first text query on an index
of AUTO_BUILD_IMAGES or more; under the facet cache's memory cap.
"""

from __future__ import annotations

import bisect
import math
import re
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from imagedex.db import Database
from imagedex.index.background_build import BackgroundBuild
from imagedex.index.sqlite_columns import AUTO_BUILD_IMAGES

#: instances read per statement while building (one group_concat string each)
_CHUNK = 2_000_000
#: a stale copy is rebuilt only after this many times the last build's length has passed
REBUILD_IDLE = 9
_K1 = 1.2
_B = 0.75
_PLAIN = re.compile(r'"([a-z0-9]+)"(\*?)')


class Sparse(Exception):
    """The rowids are too sparse for arrays indexed by rowid."""


@dataclass
class TextIndex:
    """docs_fts' postings: terms sorted as FTS5 sorts them, each one's rows and instance
    counts in one contiguous slice; every row's token count."""

    terms: list[str]
    starts: np.ndarray  # int64, len(terms) + 1
    docs: np.ndarray  # int32 rowids, by term then rowid
    counts: np.ndarray  # float64 instances of the term in the row
    tokens: np.ndarray  # float64 tokens of each rowid (index = rowid)
    rows: int
    total_tokens: int
    seq: int

    def nbytes(self) -> int:
        return int(
            self.starts.nbytes + self.docs.nbytes + self.counts.nbytes + self.tokens.nbytes
        ) + sum(len(t) + 49 for t in self.terms)


def plain_phrases(match: str) -> list[tuple[str, bool]] | None:
    """(token, is prefix) of each phrase of an `fts_query` string made only of ASCII letters
    and digits; None for anything else (FTS5 answers those)."""
    parts = match.split(" ")
    phrases = []
    for i, part in enumerate(parts):
        found = _PLAIN.fullmatch(part)
        if found is None or (found.group(2) and i != len(parts) - 1):
            return None
        phrases.append((found.group(1), bool(found.group(2))))
    return phrases or None


def read_index(db: sqlite3.Connection) -> TextIndex:
    """The postings as of `db`'s read snapshot (the caller holds a read transaction)."""
    (seq,) = db.execute("SELECT COALESCE(MAX(seq), 0) FROM doc_changes").fetchone()
    db.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.fts_rows USING fts5vocab(main, docs_fts, row)"
    )
    db.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.fts_instances"
        " USING fts5vocab(main, docs_fts, instance)"
    )
    vocab = db.execute("SELECT term, cnt FROM temp.fts_rows").fetchall()
    terms = [t for t, _ in vocab]
    per_term = np.array([c for _, c in vocab], dtype=np.int64)
    parts = []
    first = 0
    while first < len(terms):  # a range of terms holding about _CHUNK instances
        last = first
        held = per_term[first]
        while last + 1 < len(terms) and held + per_term[last + 1] <= _CHUNK:
            last += 1
            held += per_term[last]
        (joined,) = db.execute(
            "SELECT group_concat(doc) FROM temp.fts_instances WHERE term >= ? AND term <= ?",
            (terms[first], terms[last]),
        ).fetchone()
        found = np.fromstring(joined or "", dtype=np.int64, sep=",")
        if len(found) != held or (len(found) and found.max() >= 2**31):
            raise ValueError("the FTS5 instance list did not read whole")
        parts.append(found.astype(np.int32))
        first = last + 1
    instances = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
    del parts
    bounds = np.zeros(len(terms) + 1, dtype=np.int64)  # where each term's instances start
    np.cumsum(per_term, out=bounds[1:])
    # instances come by term, then row: a (term, row) pair starts where either changes
    new = np.empty(len(instances), dtype=bool)
    new[0:1] = True
    np.not_equal(instances[1:], instances[:-1], out=new[1:])
    new[bounds[:-1][bounds[:-1] < len(instances)]] = True
    heads = np.flatnonzero(new)
    del new
    counts = np.diff(np.append(heads, len(instances))).astype(np.float64)
    starts = np.searchsorted(heads, bounds, side="left")
    (rows,) = db.execute("SELECT COUNT(*) FROM docs_fts_docsize").fetchone()
    top = int(instances.max()) + 1 if len(instances) else 1
    if top > 2 * rows + 1024:  # arrays indexed by rowid: sparse rowids would waste them
        raise Sparse
    tokens = np.bincount(instances, minlength=top).astype(np.float64)
    return TextIndex(
        terms=terms,
        starts=starts.astype(np.int64),
        docs=instances[heads],
        counts=counts,
        tokens=tokens,
        rows=int(rows),
        total_tokens=len(instances),
        seq=int(seq),
    )


def _span(index: TextIndex, token: str, prefix: bool) -> tuple[int, int]:
    lo = bisect.bisect_left(index.terms, token)
    if not prefix:
        found = lo < len(index.terms) and index.terms[lo] == token
        return (lo, lo + 1) if found else (lo, lo)
    after = token[:-1] + chr(ord(token[-1]) + 1)
    return lo, bisect.bisect_left(index.terms, after)


def scores(index: TextIndex, phrases: list[tuple[str, bool]]) -> tuple[np.ndarray, np.ndarray]:
    """(rowids, -bm25) of every row matching all the phrases, rowids ascending."""
    size = len(index.tokens)
    spans = [_span(index, token, prefix) for token, prefix in phrases]
    if any(lo == hi for lo, hi in spans):  # a word no image has
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    freqs = []
    matched: np.ndarray | None = None
    for lo, hi in spans:
        a, z = int(index.starts[lo]), int(index.starts[hi])
        freq: np.ndarray
        if hi - lo == 1:
            freq = np.zeros(size, dtype=np.float64)
            freq[index.docs[a:z]] = index.counts[a:z]
        else:
            freq = np.bincount(index.docs[a:z], weights=index.counts[a:z], minlength=size)
        hit = freq > 0
        freqs.append((freq, int(np.count_nonzero(hit))))
        matched = hit if matched is None else matched & hit
    assert matched is not None
    rowids = np.flatnonzero(matched)
    avgdl = float(index.total_tokens) / float(index.rows)
    length = _K1 * (1 - _B + _B * index.tokens[rowids] / avgdl)
    score = np.zeros(len(rowids), dtype=np.float64)
    for freq, hits in freqs:
        idf = math.log((index.rows - hits + 0.5) / (hits + 0.5))
        if idf <= 0.0:
            idf = 1e-6
        f = freq[rowids]
        score = score + idf * ((f * (_K1 + 1.0)) / (f + length))
    return rowids, score


class TextCache(BackgroundBuild):
    """One index file's TextIndex, built in the background and rebuilt after writes."""

    quiet_errors = (sqlite3.Error, ValueError)

    def __init__(self, database: Database, cap_mb: float) -> None:
        super().__init__(database)
        self.cap_bytes = int(cap_mb * 1024 * 1024)
        self._index: TextIndex | None = None
        self._last: tuple[Any, TextIndex, tuple[np.ndarray, np.ndarray]] | None = None
        self._last_build = (0.0, 0.0)  # (seconds the last build took, when it ended)
        #: why the postings do not answer; "" when they may
        self.refused = "" if self.cap_bytes > 0 else "turned off (0 MB)"

    def build(self) -> None:
        """Read the postings now, in one read snapshot of this thread's connection."""
        started = time.monotonic()
        with self._database.transaction(immediate=False) as db:
            with self._lock:
                if self._closing:
                    return
                self._build_db = db
            try:
                index = read_index(db)
            except Sparse:
                self.refused = "the rowids are too sparse"
                return
            finally:
                with self._lock:
                    self._build_db = None
        self._last_build = (time.monotonic() - started, time.monotonic())
        if index.nbytes() > self.cap_bytes:
            self.refused = f"the postings need {index.nbytes() / 2**20:.0f} MB, over the cap"
            return
        with self._lock:
            self._index = index

    def scored(
        self, index: TextIndex, phrases: list[tuple[str, bool]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """`scores(index, phrases)`, the last answer kept: a keystroke's search and facets
        (one request) ask for the same words."""
        key = (id(index), tuple(phrases))
        last = self._last
        if last is not None and last[0] == key and last[1] is index:
            return last[2]
        found = scores(index, phrases)
        self._last = (key, index, found)
        return found

    def current(self, db: sqlite3.Connection) -> TextIndex | None:
        """The index when it is as fresh as `db`'s snapshot, else None (a build is started)."""
        if self.refused:
            return None
        index = self._index
        if index is not None:
            (seq,) = db.execute("SELECT COALESCE(MAX(seq), 0) FROM doc_changes").fetchone()
            if seq == index.seq:
                return index
        # below the column cache's size FTS5 ranks fast enough: no build starts by itself
        (rows,) = db.execute("SELECT COALESCE(MAX(rowid), 0) FROM docs").fetchone()
        took, ended = self._last_build
        # under steady writes a rebuild waits REBUILD_IDLE times its own length since the last
        # one ended: the rebuilds take at most about a tenth of a core
        if (index is not None or rows >= AUTO_BUILD_IMAGES) and (
            time.monotonic() - ended >= REBUILD_IDLE * took
        ):
            self.start_build()
        return None
