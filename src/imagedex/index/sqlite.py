"""The embedded search index: one SQLite file (WAL) with label rows, counters and FTS5.

Layout, chosen for the three queries that matter at a million images:
- `docs`: one row per image, the full document as JSON plus the columns we sort on;
- `label_terms`: one row per (image, searchable label name) with the best confidence for that
  name, where the names are each label, its parents and its aliases (so `dog` finds a golden
  retriever); the (term, confidence) index answers "label >= N%" with a range scan;
- `label_counts`: per-label image counts kept up to date on every write, so top-labels is a
  read of a small table instead of a GROUP BY over millions of rows;
- `docs_fts`: FTS5 over title, label names and OCR text.

`docs.ingested_at` holds the canonical UTC form (`utc_timestamp`) so that date ranges and date
buckets are string ranges on its index; the document body keeps the value as given.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from imagedex.db import Database, Migration, add_column
from imagedex.documents import (
    Facets,
    ImageDocument,
    LabelCount,
    ModerationCounts,
    SearchQuery,
    SearchResult,
    leaf_label_names,
    utc_timestamp,
)
from imagedex.enrich.phash import NEAR_DUPLICATE_DISTANCE, distance
from imagedex.enrich.phash import bands as phash_bands
from imagedex.index import facets as shape
from imagedex.index import sqlite_columns as columns
from imagedex.index import sqlite_pages as pages
from imagedex.index import sqlite_text as text_index
from imagedex.index import sqlite_vectors as vectors

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    title_lower TEXT NOT NULL,
    ingested_at TEXT NOT NULL,
    body TEXT NOT NULL,
    unsafe REAL NOT NULL DEFAULT 0,
    max_confidence REAL
);
CREATE INDEX IF NOT EXISTS docs_title ON docs (title_lower);
CREATE INDEX IF NOT EXISTS docs_ingested ON docs (ingested_at);
CREATE TABLE IF NOT EXISTS label_terms (
    doc INTEGER NOT NULL,
    term TEXT NOT NULL,
    confidence REAL NOT NULL,
    is_label INTEGER NOT NULL,
    PRIMARY KEY (term, confidence, doc)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS label_terms_doc ON label_terms (doc);
CREATE TABLE IF NOT EXISTS label_counts (
    term TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    count INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS label_counts_count ON label_counts (count DESC);
CREATE TABLE IF NOT EXISTS phash_bands (
    band TEXT NOT NULL,
    doc INTEGER NOT NULL,
    PRIMARY KEY (band, doc)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS phash_bands_doc ON phash_bands (doc);
CREATE VIRTUAL TABLE IF NOT EXISTS docs_fts USING fts5(
    title, labels, text, tokenize = 'unicode61 remove_diacritics 2'
);
"""

# prefix indexes: a prefix of 1-3 characters reads one doclist instead of merging every term
# that starts with it (thousands for a short prefix: the search page's first keystrokes)
_FTS = """CREATE VIRTUAL TABLE {name} USING fts5(
    title, labels, text, tokenize = 'unicode61 remove_diacritics 2', prefix = '1 2 3'
)"""
#: rows copied per statement while the text index is rebuilt (each step is logged)
_FTS_COPY_BATCH = 100_000

_TOKEN = re.compile(r"\w+", re.UNICODE)
_log = logging.getLogger(__name__)


def fts_query(text: str) -> str | None:
    """User text as a safe FTS5 query: every word quoted (no operators), the last one a prefix."""
    tokens = _TOKEN.findall(text.lower())
    if not tokens:
        return None
    quoted = [f'"{token}"' for token in tokens]
    quoted[-1] += "*"
    return " ".join(quoted)


# label_terms.is_label: what a term is for its image
TERM_ONLY, PARENT_LABEL, LEAF_LABEL = 0, 1, 2


def _label_terms(
    doc: ImageDocument, counted: dict[str, tuple[str, int]]
) -> list[tuple[str, float, int]]:
    """(term, best confidence, what the term is: a parent or alias only, a label of the
    document that is some other label's parent, or a leaf label); `counted` is `_counted(doc)`."""
    best: dict[str, float] = {}
    for label in doc.labels:
        for term in label.terms():
            best[term] = max(best.get(term, 0.0), label.confidence)
    kinds = {term: LEAF_LABEL if leaf else PARENT_LABEL for term, (_, leaf) in counted.items()}
    return [(term, conf, kinds.get(term, TERM_ONLY)) for term, conf in best.items()]


def _primary_labels(doc: ImageDocument) -> dict[str, str]:
    return {label.label.lower(): label.label for label in doc.labels}


def _counted(doc: ImageDocument) -> dict[str, tuple[str, int]]:
    """Each label of the document: its display name and 1 if it is a leaf label."""
    leaves = leaf_label_names(doc.labels)
    return {term: (label, int(term in leaves)) for term, label in _primary_labels(doc).items()}


def _max_confidence(doc: ImageDocument) -> float | None:
    return max((label.confidence for label in doc.labels), default=None)


def _sortable_time(value: str) -> str:
    """Canonical UTC when the value is a date-time; anything else is kept as it is."""
    try:
        return utc_timestamp(value)
    except ValueError:
        return value


_D = "[0-9]"
_CANONICAL_GLOB = f"{_D * 4}-{_D * 2}-{_D * 2}T{_D * 2}:{_D * 2}:{_D * 2}.{_D * 3}Z"


def _canonical(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _confidence_ranges() -> list[tuple[str, tuple[float, ...]]]:
    """One WHERE condition per confidence bucket; the last one holds 100 too."""
    ranges: list[tuple[str, tuple[float, ...]]] = [
        ("max_confidence >= ? AND max_confidence < ?", (low, low + shape.CONFIDENCE_STEP))
        for low in shape.CONFIDENCE_LOWS[:-1]
    ]
    ranges.append(("max_confidence >= ?", (shape.CONFIDENCE_LOWS[-1],)))
    return ranges


# ingested_at (canonical, see the module docstring) truncated to a bucket's start
_TIME_BUCKET_SQL = {
    "minute": "substr(d.ingested_at, 1, 16)",
    "hour": "substr(d.ingested_at, 1, 13)",
    "day": "substr(d.ingested_at, 1, 10)",
    "week": "date(substr(d.ingested_at, 1, 10), '-6 days', 'weekday 1')",
    "month": "substr(d.ingested_at, 1, 7) || '-01'",
}


# Steps that bring an index made by an earlier version up to this layout (see imagedex.db); an
# index from before user_version existed may already have any of their effects.
def _add_unsafe(db: sqlite3.Connection) -> None:
    add_column(db, "docs", "unsafe REAL NOT NULL DEFAULT 0")


def _add_max_confidence(db: sqlite3.Connection) -> None:
    if add_column(db, "docs", "max_confidence REAL"):
        db.execute(
            # every term's confidence is one of the labels': the doc index covers it
            "UPDATE docs SET max_confidence = (SELECT MAX(confidence) FROM label_terms"
            " WHERE doc = docs.rowid)"
        )


def _canonical_ingested_at(db: sqlite3.Connection) -> None:
    if db.execute("SELECT 1 FROM meta WHERE key = 'ingested_at_utc'").fetchone() is not None:
        return
    db.create_function("sortable_time", 1, _sortable_time, deterministic=True)
    db.execute(
        "UPDATE docs SET ingested_at = sortable_time(ingested_at)"
        " WHERE NOT ingested_at GLOB ? OR length(ingested_at) != 24",
        (_CANONICAL_GLOB,),
    )
    db.execute("INSERT INTO meta (key, value) VALUES ('ingested_at_utc', 1)")


def _count_leaves(db: sqlite3.Connection) -> None:
    """Top labels and facets count leaf labels: flag them in label_terms and count them."""
    add_column(db, "label_counts", "leaves INTEGER NOT NULL DEFAULT 0")
    db.execute("UPDATE label_counts SET leaves = 0")
    leaves: dict[str, int] = {}
    for rowid, body in db.execute("SELECT rowid, body FROM docs").fetchall():
        names = leaf_label_names(ImageDocument.from_dict(json.loads(body)).labels)
        db.execute(
            "UPDATE label_terms SET is_label = ? WHERE doc = ? AND is_label = ? AND term IN"
            f" ({','.join('?' * len(names))})",
            (LEAF_LABEL, rowid, PARENT_LABEL, *names),
        )
        for name in names:
            leaves[name] = leaves.get(name, 0) + 1
    db.executemany(
        "UPDATE label_counts SET leaves = ? WHERE term = ?", [(n, t) for t, n in leaves.items()]
    )


def _analyzed_at(db: sqlite3.Connection) -> None:
    """Documents from before `analyzed_at` get their `ingested_at`: the earliest their analysis
    can have been made, and the time it was made for those never reprocessed."""
    db.execute(
        "UPDATE docs SET body = json_set(body, '$.analyzed_at',"
        " json_extract(body, '$.ingested_at')) WHERE json_extract(body, '$.analyzed_at') IS NULL"
    )


_DOC_PEOPLE = """
CREATE TABLE IF NOT EXISTS doc_people (
    person INTEGER NOT NULL,
    doc INTEGER NOT NULL,
    PRIMARY KEY (person, doc)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS doc_people_doc ON doc_people (doc);
"""


def _face_people(doc: ImageDocument) -> set[int]:
    """The person ids of the document's faces (set by the people step, see imagedex.people)."""
    found = set()
    for face in doc.faces:
        person = face.get("person_id")
        if isinstance(person, int) and not isinstance(person, bool):
            found.add(person)
    return found


#: Turns a person reference (an id or a name, as typed) into the ids it names.
PeopleResolver = Callable[[str], list[int]]


def _person_ids(reference: str) -> list[int]:
    """Without a people store, only a numeric reference names a person."""
    digits = reference.strip().removeprefix("#")
    return [int(digits)] if digits.isascii() and digits.isdigit() and len(digits) <= 18 else []


_TERM_COUNTS = """
CREATE TABLE IF NOT EXISTS term_counts (
    term TEXT PRIMARY KEY,
    count INTEGER NOT NULL
) WITHOUT ROWID;
"""


def _term_counts(db: sqlite3.Connection) -> None:
    """How many images have each searchable name (a label, parent or alias): the total of a
    one-label query, read instead of counted over the term's rows (440,000 of them for a label
    on 44 % of a million images)."""
    db.execute(_TERM_COUNTS)  # one statement: executescript would commit the migration
    db.execute("DELETE FROM term_counts")
    db.execute(
        "INSERT INTO term_counts (term, count) SELECT term, COUNT(*) FROM label_terms"
        " WHERE confidence >= 0 GROUP BY term"
    )


def _prefix_fts(db: sqlite3.Connection) -> None:
    """Rebuild docs_fts with prefix indexes (FTS5 cannot add them to a table): a copy of its
    rows into a new table that then takes its name; about 15 s a million images."""
    (sql,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'docs_fts'").fetchone()
    if "prefix" in sql:
        return
    db.execute("DROP TABLE IF EXISTS docs_fts_prefixed")
    db.execute(_FTS.format(name="docs_fts_prefixed"))
    (last,) = db.execute("SELECT COALESCE(MAX(rowid), 0) FROM docs_fts").fetchone()
    started = time.monotonic()
    for low in range(0, last, _FTS_COPY_BATCH):
        db.execute(
            "INSERT INTO docs_fts_prefixed (rowid, title, labels, text)"
            " SELECT rowid, title, labels, text FROM docs_fts WHERE rowid > ? AND rowid <= ?",
            (low, low + _FTS_COPY_BATCH),
        )
        _log.info(
            "text index: prefix indexes for images up to %d of %d (%.0f s)",
            min(low + _FTS_COPY_BATCH, last),
            last,
            time.monotonic() - started,
        )
    db.execute("DROP TABLE docs_fts")
    db.execute("ALTER TABLE docs_fts_prefixed RENAME TO docs_fts")


def _terms(query: SearchQuery) -> list[str]:
    """The query's label terms as stored (lower case), each once."""
    return list(dict.fromkeys(t.strip().lower() for t in query.labels if t.strip()))


#: Text pages deeper than this take the general plan (the ranked plan reads them in Python)
_RANKED_TEXT_MAX = 1000


_MIGRATIONS: list[Migration] = [
    _SCHEMA + vectors.SCHEMA,
    _add_unsafe,
    _add_max_confidence,
    _canonical_ingested_at,
    "CREATE INDEX IF NOT EXISTS docs_unsafe ON docs (unsafe);"
    " CREATE INDEX IF NOT EXISTS docs_max_confidence ON docs (max_confidence);",
    vectors.VISUAL_SCHEMA,  # images indexed before get theirs on `imagedex reprocess`
    _count_leaves,
    "CREATE INDEX IF NOT EXISTS label_counts_leaves ON label_counts (leaves DESC);",
    _analyzed_at,
    _DOC_PEOPLE,  # faces get person ids from now on; none were stored before
    # facets over many images count leaf labels by scanning this index (a third of label_terms'
    # rows); is_label is a column only so that SQLite sees the index as covering
    "CREATE INDEX IF NOT EXISTS label_terms_leaves ON label_terms (term, is_label)"
    f" WHERE is_label = {LEAF_LABEL};",
    _term_counts,
    columns.SCHEMA,  # facets' column cache: which images each write touched
    _prefix_fts,
]


def _count(db: sqlite3.Connection, sql_from: str, params: list[Any], up_to: int) -> int:
    """Rows of `sql_from`; with `up_to` > 0 counting stops past that many (up_to + 1 is then
    returned): a prefix or a frequent word matches most of the images, and reading all of
    their rowids is most of a keystroke's count."""
    if up_to <= 0:
        return int(db.execute(f"SELECT COUNT(*) FROM {sql_from}", params).fetchone()[0])
    sql = f"SELECT COUNT(*) FROM (SELECT 1 FROM {sql_from} LIMIT ?)"
    return int(db.execute(sql, [*params, up_to + 1]).fetchone()[0])


class SqliteIndex:
    def __init__(self, path: Path, facet_cache_mb: float = columns.DEFAULT_CAP_MB) -> None:
        self.path = Path(path)
        self._database = Database(
            self.path,
            _MIGRATIONS,
            pragmas={"cache_size": -65536, "temp_store": "MEMORY"},
        )
        self._vectors = {name: vectors.VectorCache(table) for name, table in vectors.TABLES.items()}
        #: facets over many matches counted in numpy (see sqlite_columns; 0 MB: never)
        self.facet_columns = columns.ColumnCache(self._database, facet_cache_mb)
        #: plain-word text matched and ranked in numpy (see sqlite_text), under the same cap
        self.text_postings = text_index.TextCache(self._database, facet_cache_mb)
        #: person references in queries to person ids (open_index sets the people store's)
        self.resolve_person: PeopleResolver = _person_ids

    def _db(self) -> sqlite3.Connection:
        return self._database.connection()

    # -- writes ---------------------------------------------------------------------------------

    def upsert(self, documents: Sequence[ImageDocument]) -> None:
        with self._database.transaction() as db:
            for doc in documents:
                self._upsert_one(db, doc)
            db.execute(columns.TRIM_SQL)

    def _upsert_one(self, db: sqlite3.Connection, doc: ImageDocument) -> None:
        row = db.execute("SELECT rowid FROM docs WHERE id = ?", (doc.id,)).fetchone()
        if row is not None:
            self._remove_rows(db, row[0])
        data = doc.to_dict()
        # the vectors are kept as float32 blobs in their own tables, not as JSON text
        found = {name: data.pop(name, None) for name in vectors.TABLES}
        body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        cur = db.execute(
            "INSERT INTO docs (rowid, id, title, title_lower, ingested_at, body, unsafe,"
            " max_confidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row[0] if row else None,  # an update keeps its place in iteration order
                doc.id,
                doc.title,
                doc.title.lower(),
                _sortable_time(doc.ingested_at),
                body,
                doc.unsafe_confidence,
                _max_confidence(doc),
            ),
        )
        rowid = cur.lastrowid
        db.execute(columns.LOG_SQL, (rowid,))
        for name, table in vectors.TABLES.items():
            if found[name]:
                db.execute(
                    f"INSERT OR REPLACE INTO {table} (doc, vec) VALUES (?, ?)",
                    (rowid, vectors.encode(found[name])),
                )
                vectors.bump_generation(db, table)
        counted = _counted(doc)
        terms = _label_terms(doc, counted)
        db.executemany(
            "INSERT INTO label_terms (doc, term, confidence, is_label) VALUES (?, ?, ?, ?)",
            [(rowid, term, conf, kind) for term, conf, kind in terms],
        )
        self._bump_counts(db, counted, +1)
        db.executemany(  # rows below 0 are never counted by a query (min_confidence >= 0)
            "INSERT INTO term_counts (term, count) VALUES (?, 1)"
            " ON CONFLICT (term) DO UPDATE SET count = count + 1",
            [(term,) for term, conf, _ in terms if conf >= 0],
        )
        db.executemany(
            "INSERT OR IGNORE INTO doc_people (person, doc) VALUES (?, ?)",
            [(person, rowid) for person in _face_people(doc)],
        )
        if doc.phash:
            db.executemany(
                "INSERT OR IGNORE INTO phash_bands (band, doc) VALUES (?, ?)",
                [(band, rowid) for band in phash_bands(doc.phash)],
            )
        db.execute(
            "INSERT INTO docs_fts (rowid, title, labels, text) VALUES (?, ?, ?, ?)",
            (rowid, doc.title, doc.label_text(), "\n".join(doc.text)),
        )

    @staticmethod
    def _bump_counts(
        db: sqlite3.Connection, labels: dict[str, tuple[str, int]], delta: int
    ) -> None:
        for term, (label, leaf) in labels.items():
            db.execute(
                "INSERT INTO label_counts (term, label, count, leaves) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (term) DO UPDATE SET count = count + excluded.count,"
                " leaves = leaves + excluded.leaves",
                (term, label, delta, delta * leaf),
            )
        if delta < 0:
            db.execute("DELETE FROM label_counts WHERE count <= 0")

    def _remove_rows(self, db: sqlite3.Connection, rowid: int) -> None:
        (body,) = db.execute("SELECT body FROM docs WHERE rowid = ?", (rowid,)).fetchone()
        old = ImageDocument.from_dict(json.loads(body))
        self._bump_counts(db, _counted(old), -1)
        db.execute(
            "UPDATE term_counts SET count = count - 1 WHERE term IN"
            " (SELECT term FROM label_terms WHERE doc = ? AND confidence >= 0)",
            (rowid,),
        )
        db.execute(  # only this image's names can have dropped to 0: no scan of the table
            "DELETE FROM term_counts WHERE count <= 0 AND term IN"
            " (SELECT term FROM label_terms WHERE doc = ?)",
            (rowid,),
        )
        db.execute("DELETE FROM label_terms WHERE doc = ?", (rowid,))
        db.execute("DELETE FROM phash_bands WHERE doc = ?", (rowid,))
        db.execute("DELETE FROM doc_people WHERE doc = ?", (rowid,))
        for table in vectors.TABLES.values():
            if db.execute(f"DELETE FROM {table} WHERE doc = ?", (rowid,)).rowcount:
                vectors.bump_generation(db, table)
        db.execute("DELETE FROM docs_fts WHERE rowid = ?", (rowid,))
        db.execute("DELETE FROM docs WHERE rowid = ?", (rowid,))

    def delete(self, doc_id: str) -> bool:
        with self._database.transaction() as db:
            row = db.execute("SELECT rowid FROM docs WHERE id = ?", (doc_id,)).fetchone()
            if row is not None:
                self._remove_rows(db, row[0])
                db.execute(columns.LOG_SQL, (row[0],))
                db.execute(columns.TRIM_SQL)
        return row is not None

    # -- reads ----------------------------------------------------------------------------------

    def _with_embedding(self, rowid: int, body: str) -> ImageDocument:
        """The document with its vectors (kept apart from the JSON body)."""
        doc = ImageDocument.from_dict(json.loads(body))
        text, visual = (
            self._db()
            .execute(
                "SELECT (SELECT vec FROM embeddings WHERE doc = ?),"
                " (SELECT vec FROM visual_embeddings WHERE doc = ?)",
                (rowid, rowid),
            )
            .fetchone()
        )
        if text is not None:
            doc.embedding = vectors.decode(text)
        if visual is not None:
            doc.visual_embedding = vectors.decode(visual)
        return doc

    def get(self, doc_id: str) -> ImageDocument | None:
        row = self._db().execute("SELECT rowid, body FROM docs WHERE id = ?", (doc_id,)).fetchone()
        return self._with_embedding(row[0], row[1]) if row else None

    def find_by_title(self, title: str, limit: int = 10) -> list[ImageDocument]:
        rows = self._db().execute(
            "SELECT rowid, body FROM docs WHERE title_lower = ?"
            " ORDER BY ingested_at DESC, id LIMIT ?",
            (title.lower(), limit),
        )
        return [self._with_embedding(rowid, body) for rowid, body in rows.fetchall()]

    def near_duplicates(self, phash: str, limit: int = 20) -> list[str]:
        """Ids of documents whose perceptual hash is within NEAR_DUPLICATE_DISTANCE."""
        bands = phash_bands(phash)
        marks = ",".join("?" * len(bands))
        rows = (
            self._db()
            .execute(
                f"SELECT DISTINCT d.id, json_extract(d.body, '$.phash') FROM phash_bands b"
                f" JOIN docs d ON d.rowid = b.doc WHERE b.band IN ({marks}) LIMIT 1000",
                bands,
            )
            .fetchall()
        )
        close = [(distance(phash, h), i) for i, h in rows if h]
        return [i for dist, i in sorted(close) if dist <= NEAR_DUPLICATE_DISTANCE][:limit]

    def count(self) -> int:
        return int(self._db().execute("SELECT COUNT(*) FROM docs").fetchone()[0])

    def top_labels(
        self, limit: int = 20, min_confidence: float = 0.0, parents: bool = False
    ) -> list[LabelCount]:
        db = self._db()
        column, kinds = ("count", PARENT_LABEL) if parents else ("leaves", LEAF_LABEL)
        if min_confidence <= 0:
            rows = db.execute(
                f"SELECT label, {column} FROM label_counts WHERE {column} > 0"
                f" ORDER BY {column} DESC, term LIMIT ?",
                (limit,),
            ).fetchall()
        else:
            # one (term, confidence) range count per known label: far cheaper at 1M images than
            # grouping every label row above the threshold (measured in bench/bench_index.py)
            rows = db.execute(
                "SELECT label, n FROM (SELECT c.term, c.label, (SELECT COUNT(*) FROM label_terms t"
                " WHERE t.term = c.term AND t.confidence >= ? AND t.is_label >= ?) AS n"
                " FROM label_counts c) WHERE n > 0 ORDER BY n DESC, term LIMIT ?",
                (min_confidence, kinds, limit),
            ).fetchall()
        return [LabelCount(label, int(n)) for label, n in rows]

    def search(self, query: SearchQuery) -> SearchResult:
        if query.vector is not None:
            return self._vector_search(query)
        sql_from, params, score = self._matching(query)
        conditions, where_params = self._doc_conditions(query)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        terms = _terms(query)
        ranked = None
        with self._database.transaction(immediate=False) as db:  # count and page: one snapshot
            if len(terms) == 1 and not (where or query.text or query.min_confidence > 0):
                row = db.execute(
                    "SELECT count FROM term_counts WHERE term = ?", (terms[0],)
                ).fetchone()
                total = row[0] if row else 0
                counted_up_to = False
            elif (ranked := self._text_matches(db, query, where)) is not None:
                counted_up_to = True
                total = len(ranked[0])
                if query.track_total > 0:  # as _count gives it
                    total = min(total, query.track_total + 1)
            else:
                counted_up_to = True
                counted = f"{sql_from} JOIN docs d ON d.rowid = m.doc{where}" if where else sql_from
                total = _count(db, counted, [*params, *where_params], query.track_total)
            found = (
                self._quick_page(db, query, total, (conditions, where_params), ranked)
                if total
                else []
            )
            if found is None:
                found = self._page(db, query, (sql_from, params, score), where, where_params)
        docs = [ImageDocument.from_dict(json.loads(body)) for body in found]
        # a counter's total is exact whatever its size; a count that ran past track_total is not
        bounded = counted_up_to and 0 < query.track_total < total
        return SearchResult(
            total=query.track_total if bounded else int(total),
            documents=docs,
            total_is_lower_bound=bounded,
        )

    def _text_matches(
        self, db: sqlite3.Connection, query: SearchQuery, where: str
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """(rowids, scores) of a query by plain words alone, from sqlite_text's postings when
        they are current; else None (FTS5 answers)."""
        if where or not query.text or _terms(query) or query.min_confidence > 0:
            return None
        match = fts_query(query.text)
        phrases = text_index.plain_phrases(match) if match else None
        if phrases is None:
            return None
        index = self.text_postings.current(db)
        return None if index is None else self.text_postings.scored(index, phrases)

    def _quick_page(
        self,
        db: sqlite3.Connection,
        query: SearchQuery,
        total: int,
        doc_filter: tuple[list[str], list[Any]],
        ranked: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> list[str] | None:
        """The page through a plan of sqlite_pages where one applies (same rows, same order),
        else None. `doc_filter`: `_doc_conditions(query)`."""
        terms = _terms(query)
        match = fts_query(query.text) if query.text else None
        wanted = query.offset + query.limit
        if query.sort == "relevance" and match and not terms and query.min_confidence <= 0:
            if doc_filter[0] or wanted > _RANKED_TEXT_MAX:
                return None
            return pages.ranked_text_page(db, match, query.limit, query.offset, ranked)
        if query.sort == "relevance" or match or not terms:
            return None
        # a label query in date or title order: walk that order when the matches are so many
        # that the walk meets the page long before the general plan would have sorted them
        # (the largest rowid: the number of images or a bit more, without counting them)
        (rows,) = db.execute("SELECT COALESCE(MAX(rowid), 0) FROM docs").fetchone()
        if wanted * rows > total * total // 4:
            return None
        conditions, params = list(doc_filter[0]), list(doc_filter[1])
        all_terms = query.match_all_labels and len(terms) > 1
        conditions.insert(
            0,
            "(SELECT COUNT(DISTINCT t.term) FROM label_terms t WHERE t.doc = d.rowid"
            " AND t.term IN (SELECT value FROM json_each(?)) AND t.confidence >= ?)"
            + (" = ?" if all_terms else " >= ?"),
        )
        params[:0] = [json.dumps(terms), query.min_confidence, len(terms) if all_terms else 1]
        return pages.walk_page(db, query.sort, conditions, params, query.limit, query.offset, total)

    def _page(
        self,
        db: sqlite3.Connection,
        query: SearchQuery,
        matching: tuple[str, list[Any], str],
        where: str,
        where_params: list[Any],
    ) -> list[str]:
        """The general plan: every match joined to its row and ordered."""
        sql_from, params, score = matching
        order = {"relevance": f"{score}, d.ingested_at DESC, d.id", **pages.SORT_ORDER}[query.sort]
        rows = db.execute(
            f"SELECT d.body FROM {sql_from} JOIN docs d ON d.rowid = m.doc{where}"
            f" ORDER BY {order} LIMIT ? OFFSET ?",
            [*params, *where_params, query.limit, query.offset],
        ).fetchall()
        return [r[0] for r in rows]

    def _doc_filter(self, query: SearchQuery) -> tuple[str, list[Any]]:
        """The filters on the `docs` row itself (moderation, date range) as a WHERE clause."""
        conditions, params = self._doc_conditions(query)
        return (f" WHERE {' AND '.join(conditions)}" if conditions else ""), params

    def _doc_conditions(self, query: SearchQuery) -> tuple[list[str], list[Any]]:
        """The filters on the `docs` row (alias `d`) as conditions and their parameters."""
        conditions: list[str] = []
        params: list[Any] = []
        if query.moderation:
            conditions.append(f"d.unsafe {'>=' if query.moderation == 'unsafe' else '<'} ?")
            params.append(query.unsafe_threshold)
        if query.date_from:
            conditions.append("d.ingested_at >= ?")
            params.append(query.date_from)
        if query.date_to:
            conditions.append("d.ingested_at < ?")
            params.append(query.date_to)
        for reference in dict.fromkeys(query.people):  # every person must show (any of a name's)
            conditions.append(
                "d.rowid IN (SELECT doc FROM doc_people"
                " WHERE person IN (SELECT value FROM json_each(?)))"
            )
            params.append(json.dumps(self.resolve_person(reference)))
        return conditions, params

    def _vector_search(self, query: SearchQuery) -> SearchResult:
        """Nearest neighbours of `query.vector` among the documents the other filters allow."""
        db = self._db()
        candidates = None
        if self._filtered(query):
            plain = dataclasses.replace(query, vector=None)
            sql_from, params, _score = self._matching(plain)
            where, where_params = self._doc_filter(plain)
            rows = db.execute(
                f"SELECT m.doc FROM {sql_from} JOIN docs d ON d.rowid = m.doc{where}",
                [*params, *where_params],
            ).fetchall()
            candidates = np.array([r[0] for r in rows], dtype=np.int64)
        exclude = None
        if query.exclude_id:
            row = db.execute("SELECT rowid FROM docs WHERE id = ?", (query.exclude_id,)).fetchone()
            exclude = row[0] if row else None
        assert query.vector is not None
        cache = self._vectors[query.vector_field]
        rowids, _sims = cache.search(db, query.vector, candidates, exclude)
        page = [int(r) for r in rowids[query.offset : query.offset + query.limit]]
        bodies = (
            dict(
                db.execute(
                    f"SELECT rowid, body FROM docs WHERE rowid IN ({','.join('?' * len(page))})",
                    page,
                ).fetchall()
            )
            if page
            else {}
        )
        docs = [ImageDocument.from_dict(json.loads(bodies[r])) for r in page if r in bodies]
        return SearchResult(total=len(rowids), documents=docs)

    @staticmethod
    def _filtered(query: SearchQuery) -> bool:
        """Whether the query narrows the documents at all (a vector only ranks them)."""
        return bool(
            any(t.strip() for t in query.labels)
            or query.min_confidence > 0
            or (query.text and fts_query(query.text))
            or query.moderation
            or query.date_from
            or query.date_to
            or query.people
        )

    # -- facets ---------------------------------------------------------------------------------

    def facets(self, query: SearchQuery, labels: int = 20, interval: str = "day") -> Facets:
        """Counts over the documents the query's filters match; a vector query's vector is
        ignored (it ranks, it does not filter). Labels count images per leaf label (the
        names as stored that no other label of the image has as a parent) at or above the
        query's min_confidence.

        Without filters every count comes from an index or the label counters; with filters
        the matching rowids are gathered once into a temporary table the counts join.
        """
        shape.check(labels, interval)
        query = shape.facet_query(query)
        total: int | None = None
        with self._database.transaction(immediate=False) as db:  # one snapshot for every count
            if self._filtered(query) and not query.people:
                found = self._column_facets(db, query, labels, interval)
                if found is not None:
                    return found
            if self._filtered(query):
                sql_from, params, _score = self._matching(query)
                where, where_params = self._doc_filter(query)
                db.execute("DROP TABLE IF EXISTS temp.facet_docs")
                db.execute("CREATE TEMP TABLE facet_docs (doc INTEGER PRIMARY KEY)")
                joined = f" JOIN docs d ON d.rowid = m.doc{where}" if where else ""
                db.execute(
                    f"INSERT OR IGNORE INTO facet_docs SELECT m.doc FROM {sql_from}{joined}",
                    [*params, *where_params],
                )
                # a few matches: look each one up; many: scan the indexes, probing the set
                (matched,) = db.execute("SELECT COUNT(*) FROM temp.facet_docs").fetchone()
                # (the largest rowid: the number of images or a bit more, without counting them)
                few = (
                    matched * 20
                    < db.execute("SELECT COALESCE(MAX(rowid), 0) FROM docs").fetchone()[0]
                )
                # without a docs filter every gathered row is an image: no join to count them
                total = None if where else int(matched)
                join = "CROSS JOIN" if few else "JOIN"
                scope = f"temp.facet_docs f {join} docs d ON d.rowid = f.doc"
                label_rows = f"temp.facet_docs f {join} label_terms t ON t.doc = f.doc"
            else:
                scope = label_rows = "docs d"
            result = self._facet_counts(db, query, (scope, label_rows), labels, interval, total)
            db.execute("DROP TABLE IF EXISTS temp.facet_docs")  # an error's rollback drops it too
        return result

    def _column_facets(
        self, db: sqlite3.Connection, query: SearchQuery, labels: int, interval: str
    ) -> Facets | None:
        """The facets from the column cache when it is built and the matches are many."""
        parts = self.facet_columns.snapshot(db)
        if parts is None:
            return None
        match = fts_query(query.text) if query.text else None
        text = None
        if match is not None:
            phrases = text_index.plain_phrases(match)
            index = self.text_postings.current(db) if phrases else None
            if index is not None and phrases is not None:
                text = self.text_postings.scored(index, phrases)[0]
            else:
                text = columns.text_rowids(db, match)
        filters = columns.Filters(
            terms=_terms(query),
            all_terms=query.match_all_labels,
            min_confidence=query.min_confidence,
            text_rowids=text,
            moderation=query.moderation,
            unsafe_threshold=query.unsafe_threshold,
            date_from=int(columns.epoch_ms([query.date_from])[0]) if query.date_from else None,
            date_to=int(columns.epoch_ms([query.date_to])[0]) if query.date_to else None,
        )
        only_confidence = query.min_confidence > 0 and not self._filtered(
            dataclasses.replace(query, min_confidence=0.0)
        )
        counted = columns.count(
            self.facet_columns,
            db,
            parts,
            filters,
            0 if only_confidence else labels,
            interval,
            shape.MODERATION_LABELS,
        )
        if counted is None:
            return None
        if only_confidence:  # every image with a label that confident: the counters
            label_counts = self.top_labels(labels, query.min_confidence) if labels else []
        else:
            shown = dict(  # the names as the counters spell them, as the SQL plan joins them
                db.execute(
                    "SELECT term, label FROM label_counts"
                    " WHERE term IN (SELECT value FROM json_each(?))",
                    (json.dumps([term for term, _ in counted.leaf]),),
                ).fetchall()
            )
            label_counts = [LabelCount(shown[t], n) for t, n in counted.leaf if t in shown]
        return Facets(
            total=counted.total,
            labels=label_counts,
            over_time=shape.time_buckets(counted.times, interval, query.date_from, query.date_to),
            confidence=shape.confidence_buckets(counted.confidence),
            moderation=ModerationCounts(
                safe=counted.total - counted.unsafe,
                unsafe=counted.unsafe,
                labels=[LabelCount(name, n) for name, n in counted.moderation],
            ),
        )

    def _facet_counts(
        self,
        db: sqlite3.Connection,
        query: SearchQuery,
        sources: tuple[str, str],
        labels: int,
        interval: str,
        total: int | None = None,
    ) -> Facets:
        """`sources`: FROM clauses for the matching docs (`d`) and their label rows (`t`);
        `total`: their number when already known."""
        scope, label_rows = sources
        if total is None:
            total = int(db.execute(f"SELECT COUNT(*) FROM {scope}").fetchone()[0])
        label_counts: list[LabelCount]
        only_confidence = query.min_confidence > 0 and not self._filtered(
            dataclasses.replace(query, min_confidence=0.0)
        )
        if scope == "docs d" or only_confidence:
            # the whole collection (or every image with a label that confident): the counters
            label_counts = self.top_labels(labels, query.min_confidence) if labels else []
        else:
            rows = db.execute(
                # the constant, not a parameter, lets SQLite use the partial label_terms_leaves
                f"SELECT c.label, n FROM (SELECT t.term, COUNT(*) AS n FROM {label_rows}"
                f" WHERE t.is_label = {LEAF_LABEL} AND t.confidence >= ?"
                " GROUP BY t.term ORDER BY n DESC, t.term LIMIT ?) JOIN label_counts c USING (term)"
                " ORDER BY n DESC, term",
                (query.min_confidence, labels),
            ).fetchall()
            label_counts = [LabelCount(label, int(n)) for label, n in rows]
        if scope == "docs d":
            times = self._time_counts_by_range(db, interval)
            confidence = [
                int(db.execute(f"SELECT COUNT(*) FROM docs WHERE {cond}", args).fetchone()[0])
                for cond, args in _confidence_ranges()
            ]
        else:
            times = self._time_counts_by_group(db, scope, interval)
            confidence = [0] * len(shape.CONFIDENCE_LOWS)
            for bucket, n in db.execute(
                f"SELECT MIN(CAST(d.max_confidence / {shape.CONFIDENCE_STEP} AS INTEGER), "
                f"{len(confidence) - 1}) AS b, COUNT(*) FROM {scope}"
                " WHERE d.max_confidence >= 0 GROUP BY b"
            ):
                confidence[int(bucket)] += int(n)
        return Facets(
            total=total,
            labels=label_counts,
            over_time=shape.time_buckets(times, interval, query.date_from, query.date_to),
            confidence=shape.confidence_buckets(confidence),
            moderation=self._moderation_counts(db, scope, total, query.unsafe_threshold),
        )

    def top_people(
        self, query: SearchQuery, limit: int = 10, exclude: Sequence[int] = ()
    ) -> list[tuple[int, int]]:
        query = shape.facet_query(query)
        matching = ""
        params: list[Any] = [json.dumps([int(p) for p in exclude])]
        if self._filtered(query):
            sql_from, found, _score = self._matching(query)
            where, where_params = self._doc_filter(query)
            joined = f" JOIN docs d ON d.rowid = m.doc{where}" if where else ""
            matching = f" AND p.doc IN (SELECT m.doc FROM {sql_from}{joined})"
            params += [*found, *where_params]
        rows = self._db().execute(
            "SELECT p.person, COUNT(*) AS n FROM doc_people p"
            " WHERE p.person NOT IN (SELECT value FROM json_each(?))"
            f"{matching} GROUP BY p.person ORDER BY n DESC, p.person LIMIT ?",
            [*params, limit],
        )
        return [(int(person), int(n)) for person, n in rows]

    @staticmethod
    def _time_counts_by_group(
        db: sqlite3.Connection, scope: str, interval: str
    ) -> dict[datetime, int]:
        times: dict[datetime, int] = {}
        for key, n in db.execute(
            f"SELECT {_TIME_BUCKET_SQL[interval]} AS k, COUNT(*) FROM {scope} GROUP BY k"
        ):
            try:
                moment = shape.parse_utc(str(key))
            except ValueError:  # an ingested_at that is no date: not on the time axis
                continue
            times[moment] = times.get(moment, 0) + int(n)
        return times

    def _time_counts_by_range(self, db: sqlite3.Connection, interval: str) -> dict[datetime, int]:
        """Every image: one range count per bucket on the date index (no row is read)."""
        # canonical values start with a digit; anything else is not on the time axis
        first, last = db.execute(
            "SELECT MIN(ingested_at), MAX(ingested_at) FROM docs"
            " WHERE ingested_at >= '0' AND ingested_at < ':'"
        ).fetchone()
        if first is None:
            return {}
        try:
            starts = shape.bucket_starts(shape.parse_utc(first), shape.parse_utc(last), interval)
        except ValueError as exc:
            if "buckets" in str(exc):
                raise
            return self._time_counts_by_group(db, "docs d", interval)
        bounds = [_canonical(s) for s in starts]
        bounds.append(_canonical(shape.next_start(starts[-1], interval)))
        return {
            start: int(
                db.execute(
                    "SELECT COUNT(*) FROM docs WHERE ingested_at >= ? AND ingested_at < ?",
                    (low, high),
                ).fetchone()[0]
            )
            for start, low, high in zip(starts, bounds, bounds[1:], strict=False)
        }

    @staticmethod
    def _moderation_counts(
        db: sqlite3.Connection, scope: str, total: int, threshold: float
    ) -> ModerationCounts:
        images: dict[str, set[int]] = {}
        names: dict[str, str] = {}
        unsafe: set[int] = set()
        rows = db.execute(
            "SELECT d.rowid, json_extract(j.value, '$.label'),"
            " json_extract(j.value, '$.confidence')"
            f" FROM {scope}, json_each(d.body, '$.moderation') j WHERE d.unsafe >= ?",
            (threshold,),
        )
        for rowid, label, confidence in rows:
            unsafe.add(rowid)
            if label and float(confidence or 0) >= threshold:
                key = str(label).lower()
                names.setdefault(key, str(label))
                images.setdefault(key, set()).add(rowid)
        ranked = sorted(images.items(), key=lambda item: (-len(item[1]), item[0]))
        return ModerationCounts(
            safe=total - len(unsafe),
            unsafe=len(unsafe),
            labels=[LabelCount(names[k], len(v)) for k, v in ranked[: shape.MODERATION_LABELS]],
        )

    def _matching(self, query: SearchQuery) -> tuple[str, list[Any], str]:
        """A subquery `m(doc, score)` of matching rowids, its parameters and the ORDER BY score.

        Only fixed SQL text is ever assembled here; every user value is a bound parameter.
        """
        parts: list[str] = []
        params: list[Any] = []
        # the terms go in as one JSON parameter, so the SQL text and the number of bound
        # variables stay the same whatever the number of labels (no join per label)
        terms = _terms(query)
        if len(terms) == 1:
            # one row per (term, image): no grouping, so SQLite can walk the (term, confidence)
            # key best first and stop after the page
            parts.append(
                "SELECT doc, confidence AS score FROM label_terms"
                " WHERE term = ? AND confidence >= ?"
            )
            params += [terms[0], query.min_confidence]
        elif terms and query.match_all_labels:
            # walk the first label's (term, confidence) range; keep each image whose own label
            # rows (the doc index: a few dozen per image) hold every other term
            first, rest = terms[0], terms[1:]
            parts.append(
                "SELECT t0.doc AS doc, t0.confidence AS score FROM label_terms t0"
                " WHERE t0.term = ? AND t0.confidence >= ?"
                " AND (SELECT COUNT(DISTINCT o.term) FROM label_terms o"
                " WHERE o.doc = t0.doc AND o.confidence >= ?"
                " AND o.term IN (SELECT value FROM json_each(?))) = ?"
            )
            params += [first, query.min_confidence, query.min_confidence]
            params += [json.dumps(rest), len(rest)]
        elif terms:
            parts.append(
                "SELECT doc, MAX(confidence) AS score FROM label_terms"
                " WHERE term IN (SELECT value FROM json_each(?)) AND confidence >= ? GROUP BY doc"
            )
            params += [json.dumps(terms), query.min_confidence]
        elif query.min_confidence > 0:
            parts.append(
                "SELECT doc, MAX(confidence) AS score FROM label_terms WHERE confidence >= ?"
                " GROUP BY doc"
            )
            params.append(query.min_confidence)
        match = fts_query(query.text) if query.text else None
        if match is not None:
            parts.append(
                "SELECT rowid AS doc, -bm25(docs_fts) AS score FROM docs_fts WHERE docs_fts MATCH ?"
            )
            params.append(match)
        if not parts:
            # every score would be equal: order by date and let SQLite walk its date index
            return "(SELECT rowid AS doc, 0 AS score FROM docs) m", params, "d.ingested_at DESC"
        if len(parts) == 1:
            return f"({parts[0]}) m", params, "m.score DESC"
        # text AND labels: intersect, ranking by label confidence then text relevance
        sql = (
            "(SELECT a.doc AS doc, a.score AS score, b.score AS score2"
            f" FROM ({parts[0]}) a JOIN ({parts[1]}) b ON a.doc = b.doc) m"
        )
        return sql, params, "m.score DESC, m.score2 DESC"

    def iter_documents(self, batch: int = 500) -> Iterable[ImageDocument]:
        last = 0
        while True:
            rows = (
                self._db()
                .execute(
                    "SELECT rowid, body FROM docs WHERE rowid > ? ORDER BY rowid LIMIT ?",
                    (last, batch),
                )
                .fetchall()
            )
            if not rows:
                return
            for rowid, body in rows:
                last = rowid
                yield self._with_embedding(rowid, body)

    def close(self) -> None:
        self.facet_columns.close()  # a background build stops before its connection closes
        self.text_postings.close()
        self._database.close()
