"""Exact nearest-neighbour search over embeddings kept in SQLite, for the embedded index.

Vectors live in one table per document field (`TABLES`): `embeddings(doc, vec)` (the text
embedding, 384 floats) and `visual_embeddings(doc, vec)` (how the image looks, 1280 floats), as
float32 blobs. Searches run against an in-memory matrix per table that is loaded on the first
search and reloaded only when another writer changed that table (a generation counter per table
in `meta`). Exact cosine similarity over all vectors costs ~N×D multiply-adds: a few ms per query
for 100k images of 384 dimensions, ~3x that for the visual vectors, whose matrix takes 5 KB per
image in memory (100k images: 512 MB). Collections far beyond that belong on OpenSearch's k-NN.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence

import numpy as np

SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (doc INTEGER PRIMARY KEY, vec BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('embeddings_generation', 0);
"""
VISUAL_SCHEMA = """
CREATE TABLE IF NOT EXISTS visual_embeddings (doc INTEGER PRIMARY KEY, vec BLOB NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('visual_embeddings_generation', 0);
"""
#: Each vector field of a document and the table holding it (fixed names, never user input).
TABLES = {"embedding": "embeddings", "visual_embedding": "visual_embeddings"}
MIN_SIMILARITY = 0.2  # below this a "match" is noise; counted hits stop here


def encode(vector: Sequence[float]) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def _normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)


def decode(blob: bytes) -> list[float]:
    return [float(x) for x in np.frombuffer(blob, dtype=np.float32)]


def bump_generation(db: sqlite3.Connection, table: str = "embeddings") -> None:
    db.execute("UPDATE meta SET value = value + 1 WHERE key = ?", (f"{table}_generation",))


class VectorCache:
    """The vectors of one table (see `TABLES`) as a normalised in-memory matrix."""

    def __init__(self, table: str = "embeddings") -> None:
        if table not in TABLES.values():
            raise ValueError(f"no vector table {table!r}")
        self.table = table
        self._lock = threading.Lock()
        self._generation = -1
        self._rowids = np.zeros(0, dtype=np.int64)
        self._matrix = np.zeros((0, 0), dtype=np.float32)

    def _load(self, db: sqlite3.Connection) -> tuple[np.ndarray, np.ndarray]:
        (generation,) = db.execute(
            "SELECT value FROM meta WHERE key = ?", (f"{self.table}_generation",)
        ).fetchone()
        with self._lock:
            if generation != self._generation:
                rows = db.execute(f"SELECT doc, vec FROM {self.table} ORDER BY doc").fetchall()
                dims = {len(r[1]) for r in rows}
                if len(dims) > 1:  # vectors from two models: keep the most common size
                    common = max(dims, key=lambda d: sum(1 for r in rows if len(r[1]) == d))
                    rows = [r for r in rows if len(r[1]) == common]
                self._rowids = np.array([r[0] for r in rows], dtype=np.int64)
                self._matrix = (
                    _normalise(
                        np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(
                            len(rows), -1
                        )
                    )
                    if rows
                    else np.zeros((0, 0), dtype=np.float32)
                )
                self._generation = generation
            return self._rowids, self._matrix

    def search(
        self,
        db: sqlite3.Connection,
        vector: Sequence[float],
        candidates: np.ndarray | None,
        exclude_rowid: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(rowids, similarities) of vectors with similarity >= MIN_SIMILARITY, best first."""
        rowids, matrix = self._load(db)
        query = _normalise(np.asarray(vector, dtype=np.float32))
        if matrix.size == 0 or matrix.shape[1] != query.shape[0]:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        scores = matrix @ query
        keep = scores >= MIN_SIMILARITY
        if candidates is not None:
            keep &= np.isin(rowids, candidates)
        if exclude_rowid is not None:
            keep &= rowids != exclude_rowid
        found, sims = rowids[keep], scores[keep]
        order = np.lexsort((found, -sims))  # best first, ties by insertion order
        return found[order], sims[order]
