"""Facets over many matches on the SQLite index, counted in numpy instead of row by row.

SQLite counts a facet at about a microsecond per matching row; a filter matching 440,000 of a
million images takes seconds. This per-process cache holds what the facets read as arrays:

- per image (by position in `rowids`): ingested_at in epoch milliseconds, max_confidence (NaN
  without labels), the unsafe score;
- leaf-label postings (image, term id, confidence): the label counts;
- moderation postings (image, label id, best confidence): the moderation counts;
- per searchable name, loaded the first time a query filters by it: its images and confidences.

A query's filters become a boolean mask over the images, and every facet is a bincount over it.

Freshness: other processes (the worker) write the same file. Every write logs the rowids it
touched in `doc_changes` (same transaction, see sqlite.py). A reader compares the log's last seq
with the one its arrays were read at; the images changed since are masked out of the base arrays
and read again, in the caller's snapshot, into a small overlay counted the same way. When the
overlay grows past OVERLAY_LIMIT images, or the log no longer holds every change since the base
(writers trim it), the base is rebuilt in a background thread and SQLite answers meanwhile.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from imagedex.db import Database
from imagedex.index.background_build import BackgroundBuild

#: Images changed since the base was read that a query re-reads itself; beyond, rebuild.
OVERLAY_LIMIT = 2000
#: Writers keep this many log entries (more than any overlay needs; see `trim_sql`).
LOG_KEEP = 10 * OVERLAY_LIMIT
#: Default memory cap of the cache; an index whose arrays would need more keeps SQLite counting.
DEFAULT_CAP_MB = 512
#: Matches below this share of the images: SQLite looks each one up faster than a pass over
#: the arrays (at a million images SQL counts ~60 us a match, the arrays cost ~25 ms in all).
MIN_SHARE = 1 / 2000
#: Indexes with fewer images are not worth a cache (SQL counts all of them in a few ms) unless
#: `build()` is called
AUTO_BUILD_IMAGES = 20_000
#: Names on at least this share of the images have their postings read with the cache; others
#: on first use (15,000 rows: ~10 ms).
PRELOAD_SHARE = 1 / 50

SCHEMA = """
CREATE TABLE IF NOT EXISTS doc_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    doc INTEGER NOT NULL
);
"""

LOG_SQL = "INSERT INTO doc_changes (doc) VALUES (?)"
TRIM_SQL = "DELETE FROM doc_changes WHERE seq <= (SELECT MAX(seq) FROM doc_changes) - " + str(
    LOG_KEEP
)

_LEAF = 2  # label_terms.is_label of a leaf label (sqlite.LEAF_LABEL)
_CANONICAL = (
    "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z"
)


def epoch_ms(canonical: Sequence[str]) -> np.ndarray:
    """Canonical UTC timestamps (`2024-05-01T10:00:00.000Z`) as int64 epoch milliseconds."""
    if not canonical:
        return np.zeros(0, dtype=np.int64)
    return np.array([t[:23] for t in canonical], dtype="datetime64[ms]").astype(np.int64)


def text_rowids(db: sqlite3.Connection, match: str) -> np.ndarray:
    """The rowids an FTS5 query matches, as one string parsed in C: a row per rowid through
    Python costs 0.5 us (176 ms for a word on 306,000 of a million images, 39 ms this way)."""
    (joined,) = db.execute(
        "SELECT group_concat(rowid) FROM docs_fts WHERE docs_fts MATCH ?", (match,)
    ).fetchone()
    if not joined:
        return np.zeros(0, dtype=np.int64)
    found = np.fromstring(joined, dtype=np.int64, sep=",")
    if len(found) != joined.count(",") + 1:
        raise ValueError("an FTS5 rowid list did not parse")
    return found


class Closed(Exception):
    """The index is being closed: a build stops."""


def _chunks(
    cursor: sqlite3.Cursor, closing: Callable[[], bool] | None = None, size: int = 1 << 17
) -> Iterator[list[Any]]:
    """A query's rows a slice at a time (a million rows held as tuples take ~100 MB each),
    stopping when `closing()` says so."""
    while rows := cursor.fetchmany(size):
        if closing is not None and closing():
            raise Closed
        yield rows


def _joined(parts: list[tuple[np.ndarray, ...]], dtypes: tuple[Any, ...]) -> list[np.ndarray]:
    """Column-wise concatenation of chunks' arrays (empty arrays of `dtypes` without any)."""
    if not parts:
        return [np.zeros(0, dtype=d) for d in dtypes]
    return [np.concatenate(column) for column in zip(*parts, strict=True)]


class Vocabulary:
    """Strings to dense ids, shared by the base and its overlays (which may add names)."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.names: list[str] = []
        self._lock = threading.Lock()  # a build thread and a query's overlay may add at once

    def id(self, name: str) -> int:
        found = self.ids.get(name)
        if found is None:
            with self._lock:
                found = self.ids.get(name)
                if found is None:
                    found = self.ids[name] = len(self.names)
                    self.names.append(name)
        return found


@dataclass
class Columns:
    """What the facets read for a set of images (the whole index, or an overlay of changes)."""

    seq: int
    rowids: np.ndarray  # int64, ascending
    ingested: np.ndarray  # int64 epoch ms
    max_conf: np.ndarray  # float64, NaN without labels
    unsafe: np.ndarray  # float64
    leaf_pos: np.ndarray  # int32 positions
    leaf_term: np.ndarray  # int32 term ids
    leaf_conf: np.ndarray  # float64
    mod_pos: np.ndarray
    mod_label: np.ndarray  # lower case name ids
    mod_shown: np.ndarray  # spelling ids
    mod_conf: np.ndarray
    alive: np.ndarray = field(init=False)  # bool, all True (see `base_alive`)
    #: on an overlay: which base images still count (those not changed since the base's seq);
    #: kept here, not on the shared base, so a query counts with the overlay it read
    base_alive: np.ndarray | None = None
    #: per searchable name: (positions, confidences); filled on first use for the base, all
    #: names up front for an overlay
    postings: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.alive = np.ones(len(self.rowids), dtype=bool)
        self.lookup: np.ndarray | None = None  # rowid -> position (-1: none), when dense
        top = int(self.rowids[-1]) if len(self.rowids) else 0
        if len(self.rowids) >= 1000 and top < 2 * len(self.rowids):
            self.lookup = np.full(top + 1, -1, dtype=np.int32)
            self.lookup[self.rowids] = np.arange(len(self.rowids), dtype=np.int32)

    def nbytes(self) -> int:
        arrays = [
            self.rowids,
            self.ingested,
            self.max_conf,
            self.unsafe,
            self.leaf_pos,
            self.leaf_term,
            self.leaf_conf,
            self.mod_pos,
            self.mod_label,
            self.mod_shown,
            self.mod_conf,
            self.alive,
        ]
        if self.lookup is not None:
            arrays.append(self.lookup)
        arrays += [a for pair in self.postings.values() for a in pair]
        return sum(a.nbytes for a in arrays)

    def positions(self, rowids: Iterable[int] | np.ndarray) -> np.ndarray:
        """Positions of those `rowids` this set holds (others are dropped)."""
        found = np.asarray(rowids, dtype=np.int64)
        if self.lookup is not None:  # a gather instead of a binary search per rowid
            inside = (found >= 0) & (found < len(self.lookup))
            at = self.lookup[found[inside]]
            return at[at >= 0].astype(np.int64)
        at = np.searchsorted(self.rowids, found)
        inside = at < len(self.rowids)
        inside[inside] = self.rowids[at[inside]] == found[inside]
        return at[inside]


def read_columns(
    db: sqlite3.Connection,
    names: tuple[Vocabulary, Vocabulary, Vocabulary],
    docs: Sequence[int] | None,
    closing: Callable[[], bool] | None = None,
) -> Columns:
    """The arrays of every image (`docs` None) or of those rowids, in `db`'s current snapshot
    (the caller holds a read transaction). `names`: label terms, moderation labels (lower
    case) and their spellings."""
    labels, moderation, spellings = names
    (seq,) = db.execute("SELECT COALESCE(MAX(seq), 0) FROM doc_changes").fetchone()
    some = "" if docs is None else " WHERE rowid IN (SELECT value FROM json_each(?))"
    some_doc = "" if docs is None else " AND doc IN (SELECT value FROM json_each(?))"
    args: tuple[str, ...] = () if docs is None else (json.dumps(list(docs)),)
    parts: list[tuple[np.ndarray, ...]] = []
    for rows in _chunks(
        db.execute(
            f"SELECT rowid, ingested_at, max_confidence, unsafe FROM docs{some} ORDER BY rowid",
            args,
        ),
        closing,
    ):
        parts.append(
            (
                np.array([r[0] for r in rows], dtype=np.int64),
                epoch_ms([r[1] for r in rows]),
                np.array([np.nan if r[2] is None else r[2] for r in rows], dtype=np.float64),
                np.array([r[3] for r in rows], dtype=np.float64),
            )
        )
    rowids, ingested, max_conf, unsafe = _joined(
        parts, (np.int64, np.int64, np.float64, np.float64)
    )
    terms: dict[str, int] = {}
    parts = []
    for rows in _chunks(
        db.execute(
            f"SELECT term, confidence, doc FROM label_terms WHERE is_label = {_LEAF}{some_doc}",
            args,
        ),
        closing,
    ):
        for term, _c, _d in rows:
            if term not in terms:
                terms[term] = labels.id(term)
        parts.append(
            (
                np.array([terms[r[0]] for r in rows], dtype=np.int32),
                np.array([r[1] for r in rows], dtype=np.float64),
                np.array([r[2] for r in rows], dtype=np.int64),
            )
        )
    leaf_term, leaf_conf, leaf_doc = _joined(parts, (np.int32, np.float64, np.int64))
    del parts
    # every entry, in row then list order: the SQL plan names a label as its first counted
    # entry spells it
    entries: list[tuple[int, int, int, float]] = []  # rowid, label id, spelling id, confidence
    for rowid, label, confidence in db.execute(
        "SELECT d.rowid, json_extract(j.value, '$.label'), json_extract(j.value, '$.confidence')"
        f" FROM docs d, json_each(d.body, '$.moderation') j"
        f"{some.replace('rowid', 'd.rowid')}",
        args,
    ):
        if not label:
            continue
        entries.append(
            (
                rowid,
                moderation.id(str(label).lower()),
                spellings.id(str(label)),
                float(confidence or 0),
            )
        )
    mod = np.array(entries, dtype=np.float64).reshape(-1, 4)
    columns = Columns(
        seq=int(seq),
        rowids=rowids,
        ingested=ingested,
        max_conf=max_conf,
        unsafe=unsafe,
        leaf_pos=np.searchsorted(rowids, leaf_doc).astype(np.int32),
        leaf_term=leaf_term,
        leaf_conf=leaf_conf,
        mod_pos=np.searchsorted(rowids, mod[:, 0].astype(np.int64)).astype(np.int32),
        mod_label=mod[:, 1].astype(np.int32),
        mod_shown=mod[:, 2].astype(np.int32),
        mod_conf=np.array([e[3] for e in entries], dtype=np.float64),
    )
    if docs is not None:  # an overlay is small: every name's rows up front
        found: dict[str, tuple[list[int], list[float]]] = {}
        for term, confidence, doc in db.execute(
            f"SELECT term, confidence, doc FROM label_terms WHERE 1{some_doc}", args
        ):
            docs_of, confs = found.setdefault(term, ([], []))
            docs_of.append(doc)
            confs.append(confidence)
        for term, (docs_of, confs) in found.items():
            at = np.searchsorted(rowids, np.array(docs_of, dtype=np.int64))
            columns.postings[term] = (at, np.array(confs, dtype=np.float64))
    return columns


def canonical_times(db: sqlite3.Connection) -> bool:
    """Whether every ingested_at is a canonical UTC time (other values compare as strings in
    SQL, which epoch milliseconds cannot reproduce: SQLite counts such an index)."""
    row = db.execute(
        "SELECT 1 FROM docs WHERE NOT (ingested_at GLOB ? AND length(ingested_at) = 24) LIMIT 1",
        (_CANONICAL,),
    ).fetchone()
    return row is None


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class ColumnCache(BackgroundBuild):
    """The base arrays of one index file, built in the background, with the overlay of later
    changes; `snapshot(db)` gives what to count with in the caller's read transaction."""

    quiet_errors = (sqlite3.Error, Closed)

    def __init__(self, database: Database, cap_mb: float = DEFAULT_CAP_MB) -> None:
        super().__init__(database)
        self.cap_bytes = int(cap_mb * 1024 * 1024)
        self.labels = Vocabulary()
        self.moderation = Vocabulary()
        self.spellings = Vocabulary()
        self._base: Columns | None = None
        self._overlay: Columns | None = None
        #: why the cache does not answer (over the cap, times not canonical); "" when it may
        self.refused = "" if self.cap_bytes > 0 else "turned off (0 MB)"

    # -- building ---------------------------------------------------------------------------------

    def build(self) -> None:
        """Read the base arrays now, in one read snapshot of this thread's connection."""
        if self.cap_bytes <= 0:
            with self._lock:
                self._base, self._overlay, self.refused = None, None, "turned off (0 MB)"
            return
        with self._database.transaction(immediate=False) as db:
            with self._lock:
                if self._closing:
                    raise Closed
                self._build_db = db
            try:
                base, refused = self._read_base(db)
            finally:
                with self._lock:
                    self._build_db = None
        with self._lock:
            self._base, self._overlay, self.refused = base, None, refused

    def _read_base(self, db: sqlite3.Connection) -> tuple[Columns | None, str]:
        """The base arrays, or None and why not."""
        if not canonical_times(db):
            return None, "an ingested_at is not a canonical UTC time"
        names = (self.labels, self.moderation, self.spellings)
        base = read_columns(db, names, None, self._is_closing)
        # the names on many images up front (a filter by them is what the arrays are for); a
        # rarer one is read on first use
        for (term,) in db.execute(
            "SELECT term FROM term_counts WHERE count >= ? ORDER BY count DESC",
            (PRELOAD_SHARE * len(base.rowids),),
        ).fetchall():
            if self._closing:
                raise Closed
            self.base_postings(db, base, term)
        if base.nbytes() > self.cap_bytes:
            return None, f"the arrays need {base.nbytes() / 2**20:.0f} MB, over the cap"
        return base, ""

    # -- reading ----------------------------------------------------------------------------------

    def snapshot(self, db: sqlite3.Connection) -> tuple[Columns, Columns | None] | None:
        """(base, overlay) as of `db`'s snapshot, or None when SQLite must count (no base yet:
        one is started; too many changes since: a rebuild is started)."""
        with self._lock:
            base, overlay = self._base, self._overlay
        if base is None:
            if not self.refused and _images(db) >= AUTO_BUILD_IMAGES:
                self.start_build()
            return None
        (last, first) = db.execute(
            "SELECT COALESCE(MAX(seq), 0), COALESCE(MIN(seq), 0) FROM doc_changes"
        ).fetchone()
        if last == base.seq:
            return base, None
        if last < base.seq or (first > base.seq + 1):  # a rewound file or a trimmed log
            self.start_build()
            return None
        if overlay is not None and overlay.seq == last:
            return base, overlay
        changed = [
            r[0]
            for r in db.execute(
                "SELECT DISTINCT doc FROM doc_changes WHERE seq > ? LIMIT ?",
                (base.seq, OVERLAY_LIMIT + 1),
            )
        ]
        if len(changed) > OVERLAY_LIMIT or not canonical_times_of(db, changed):
            self.start_build()
            return None
        overlay = read_columns(db, (self.labels, self.moderation, self.spellings), changed)
        overlay.seq = int(last)
        # the base's copies of the changed images no longer count
        overlay.base_alive = np.ones(len(base.rowids), dtype=bool)
        overlay.base_alive[base.positions(changed)] = False
        with self._lock:
            if self._base is base:
                self._overlay = overlay
        return base, overlay

    def base_postings(
        self, db: sqlite3.Connection, base: Columns, term: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """A searchable name's images (base positions) and confidences, read on first use.

        Read in a later snapshot than the base: rows of images changed since are masked out by
        `alive` (they are in the overlay), and images added since are not in the base."""
        found = base.postings.get(term)
        if found is None:
            cursor = db.execute("SELECT doc, confidence FROM label_terms WHERE term = ?", (term,))
            docs, confs = _joined(
                [
                    (
                        np.array([r[0] for r in rows], dtype=np.int64),
                        np.array([r[1] for r in rows], dtype=np.float64),
                    )
                    for rows in _chunks(cursor)
                ],
                (np.int64, np.float64),
            )
            at = np.searchsorted(base.rowids, docs)
            inside = at < len(base.rowids)
            inside[inside] = base.rowids[at[inside]] == docs[inside]
            found = (at[inside].astype(np.int32), confs[inside])
            if base.nbytes() + found[0].nbytes + found[1].nbytes <= self.cap_bytes:
                base.postings[term] = found
        return found


def _images(db: sqlite3.Connection) -> int:
    """The largest rowid: the number of images or a bit more, without counting them."""
    return int(db.execute("SELECT COALESCE(MAX(rowid), 0) FROM docs").fetchone()[0])


def canonical_times_of(db: sqlite3.Connection, rowids: Sequence[int]) -> bool:
    row = db.execute(
        "SELECT 1 FROM docs WHERE rowid IN (SELECT value FROM json_each(?))"
        " AND NOT (ingested_at GLOB ? AND length(ingested_at) = 24) LIMIT 1",
        (json.dumps(list(rowids)), _CANONICAL),
    ).fetchone()
    return row is None


@dataclass
class Counts:
    """Raw facet counts of a query, before shaping (names still ids)."""

    total: int
    leaf: list[tuple[str, int]]  # (term, images), best first, ties by term
    times: dict[datetime, int]
    confidence: list[int]
    unsafe: int
    moderation: list[tuple[str, int]]  # (display name, images), best first


_MS = {"minute": 60_000, "hour": 3_600_000, "day": 86_400_000}
_DAY = 86_400_000


def _bucket_index(ms: np.ndarray, interval: str) -> np.ndarray:
    """Each time's bucket as an integer (minutes, hours, days, weeks or months since 1970)."""
    if interval in _MS:
        return ms // _MS[interval]
    if interval == "week":  # 1970-01-01 was a Thursday: +3 makes weeks start on Monday
        return (ms // _DAY + 3) // 7
    return ms.astype("datetime64[ms]").astype("datetime64[M]").astype(np.int64)


def _bucket_start(index: int, interval: str) -> datetime:
    if interval in _MS:
        return _utc(index * _MS[interval])
    if interval == "week":
        return _utc((index * 7 - 3) * _DAY)
    month = np.datetime64(index, "M").astype("datetime64[ms]").astype(np.int64)
    return _utc(int(month))


def _mask(
    cache: ColumnCache,
    db: sqlite3.Connection,
    part: Columns,
    alive: np.ndarray | None,
    query: Filters,
) -> np.ndarray:
    """Which of `part`'s images the query matches; `alive`: the base's images still current
    (None for an overlay)."""
    is_base = alive is not None
    mask = part.alive.copy() if alive is None else alive.copy()
    if query.terms:
        hits = []
        for term in query.terms:
            if is_base:
                pos, conf = cache.base_postings(db, part, term)
            else:
                empty = (np.zeros(0, dtype=np.int64), np.zeros(0))
                pos, conf = part.postings.get(term, empty)
            has = np.zeros(len(part.rowids), dtype=bool)
            has[pos[conf >= query.min_confidence]] = True
            hits.append(has)
        mask &= np.logical_and.reduce(hits) if query.all_terms else np.logical_or.reduce(hits)
    elif query.min_confidence > 0:
        mask &= part.max_conf >= query.min_confidence
    if query.text_rowids is not None:
        has = np.zeros(len(part.rowids), dtype=bool)
        has[part.positions(query.text_rowids)] = True
        mask &= has
    if query.moderation == "unsafe":
        mask &= part.unsafe >= query.unsafe_threshold
    elif query.moderation == "safe":
        mask &= part.unsafe < query.unsafe_threshold
    if query.date_from is not None:
        mask &= part.ingested >= query.date_from
    if query.date_to is not None:
        mask &= part.ingested < query.date_to
    return mask


@dataclass
class Filters:
    """A query's filters as the arrays compare them (`text_rowids`: the FTS5 matches)."""

    terms: list[str]
    all_terms: bool
    min_confidence: float
    text_rowids: np.ndarray | None
    moderation: str
    unsafe_threshold: float
    date_from: int | None
    date_to: int | None


def count(
    cache: ColumnCache,
    db: sqlite3.Connection,
    parts: tuple[Columns, Columns | None],
    query: Filters,
    labels: int,
    interval: str,
    moderation_labels: int,
    min_share: float | None = None,
) -> Counts | None:
    """The facets of `query` over base and overlay; None when the matches are fewer than
    `min_share` of the images (SQLite looks a few up faster than a pass over every array)."""
    base, overlay = parts
    images = len(base.rowids) + (len(overlay.rowids) if overlay else 0)
    least = (MIN_SHARE if min_share is None else min_share) * images
    if _fewer(db, query, least):
        return None
    alive = base.alive if overlay is None or overlay.base_alive is None else overlay.base_alive
    masked = [(base, _mask(cache, db, base, alive, query))]
    if overlay is not None:
        masked.append((overlay, _mask(cache, db, overlay, None, query)))
    total = sum(int(m.sum()) for _, m in masked)
    if total < least:
        return None
    leaf = np.zeros(len(cache.labels.names), dtype=np.int64)
    flagged: list[np.ndarray] = []  # per counted moderation entry: rowid, label, spelling
    confidence = np.zeros(10, dtype=np.int64)
    unsafe = 0
    indexes = []
    for part, mask in masked:
        if labels:
            chosen = mask[part.leaf_pos]
            if query.min_confidence > 0:
                chosen &= part.leaf_conf >= query.min_confidence
            leaf += np.bincount(part.leaf_term[chosen], minlength=len(leaf))
        indexes.append(_bucket_index(part.ingested[mask], interval))
        best = part.max_conf[mask]
        best = best[best >= 0]
        # as SQL: CAST(max_confidence / 10 AS INTEGER), the top bucket holding 100 too
        confidence += np.bincount(np.minimum(np.floor(best / 10), 9).astype(np.int64), minlength=10)
        bad = mask & (part.unsafe >= query.unsafe_threshold)
        unsafe += int(bad.sum())
        chosen = bad[part.mod_pos] & (part.mod_conf >= query.unsafe_threshold)
        flagged.append(
            np.stack(
                [part.rowids[part.mod_pos[chosen]], part.mod_label[chosen], part.mod_shown[chosen]]
            )
        )
    every = np.concatenate(indexes)
    times: dict[datetime, int] = {}
    if len(every):
        low, high = int(every.min()), int(every.max())
        if high - low <= 4 * len(every) + 100_000:
            spread = np.bincount(every - low)
            found = np.flatnonzero(spread)
            keys, ns = found + low, spread[found]
        else:  # sparse over a long span: sort instead of one counter per bucket
            keys, ns = np.unique(every, return_counts=True)
        times = {_bucket_start(int(k), interval): int(n) for k, n in zip(keys, ns, strict=True)}
    return Counts(
        total=total,
        leaf=_ranked(leaf, cache.labels.names, cache.labels.names, labels),
        times=times,
        confidence=[int(n) for n in confidence],
        unsafe=unsafe,
        moderation=_moderation(cache, np.concatenate(flagged, axis=1), moderation_labels),
    )


def _moderation(cache: ColumnCache, flagged: np.ndarray, limit: int) -> list[tuple[str, int]]:
    """Images per moderation label (lower case) from the counted entries (rowid, label id,
    spelling id), each named as its first entry in row order spells it."""
    flagged = flagged[:, np.argsort(flagged[0], kind="stable")]
    rowid, label, spelling = flagged
    width = max(len(cache.moderation.names), 1)
    pairs = np.unique(rowid * width + label)  # an image counts once per label
    images = np.bincount(pairs % width, minlength=width)
    firsts, at = np.unique(label, return_index=True)
    shown = dict.fromkeys(range(width), "")
    for key, index in zip(firsts, at, strict=True):
        shown[int(key)] = cache.spellings.names[int(spelling[index])]
    return _ranked(images, cache.moderation.names, [shown[i] for i in range(width)], limit)


def _fewer(db: sqlite3.Connection, query: Filters, least: float) -> bool:
    """Whether the matches are surely fewer than `least`, known before reading any postings:
    from the FTS5 matches, or the label counters (images per name)."""
    if query.text_rowids is not None and len(query.text_rowids) < least:
        return True
    if not query.terms:
        return False
    counts = dict(
        db.execute(
            "SELECT term, count FROM term_counts WHERE term IN (SELECT value FROM json_each(?))",
            (json.dumps(query.terms),),
        ).fetchall()
    )
    found = [counts.get(term, 0) for term in query.terms]
    return (min(found) if query.all_terms else sum(found)) < least


def _ranked(
    counts: np.ndarray, keys: Sequence[str], shown: Sequence[str], limit: int
) -> list[tuple[str, int]]:
    """The `limit` largest counts, ties by key (code point order, as SQLite's BINARY)."""
    found = np.flatnonzero(counts)
    ranked = sorted((-int(counts[i]), keys[i], i) for i in map(int, found))[:limit]
    return [(shown[i], -n) for n, _k, i in ranked]
