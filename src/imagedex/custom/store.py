"""`custom.sqlite3`: corrections and taught labels, kept apart from the analysis so that they
survive reprocessing and model changes.

- `corrections`: one row per (image, label): `add` (a person says the image shows it) or
  `remove` (a person says it does not; it never comes back on that image);
- `labels`: each taught label: its model (centroid, threshold), its estimated precision and
  recall, and how far applying it to the existing collection has got;
- `examples`: each label's positive and negative examples with their visual embedding (kept
  here, so a deleted image does not take an example with it);
- `drafts`: examples collected one image at a time (the image page's "teach a label from this
  image") for a label that does not exist yet; it is trained from them once they are enough;
- `meta.generation`: bumped by every change, so workers reload only when something changed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imagedex.clock import utc_now
from imagedex.db import Database, Migration

FILE_NAME = "custom.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS corrections (
    doc TEXT NOT NULL,
    label_lower TEXT NOT NULL,
    label TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('add', 'remove')),
    at TEXT NOT NULL,
    PRIMARY KEY (doc, label_lower)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS labels (
    name_lower TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created TEXT NOT NULL,
    trained TEXT NOT NULL,
    centroid BLOB NOT NULL,
    threshold REAL NOT NULL,
    precision REAL NOT NULL,
    recall REAL NOT NULL,
    negatives INTEGER NOT NULL,
    applied INTEGER NOT NULL DEFAULT 0,
    to_apply INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'pending'
);
CREATE TABLE IF NOT EXISTS examples (
    label_lower TEXT NOT NULL,
    doc TEXT NOT NULL,
    positive INTEGER NOT NULL,
    embedding BLOB NOT NULL,
    PRIMARY KEY (label_lower, doc)
) WITHOUT ROWID;
"""

_DRAFTS = """
CREATE TABLE IF NOT EXISTS drafts (
    label_lower TEXT NOT NULL,
    name TEXT NOT NULL,
    doc TEXT NOT NULL,
    embedding BLOB NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (label_lower, doc)
) WITHOUT ROWID;
"""

_MIGRATIONS: list[Migration] = [_SCHEMA, _DRAFTS]


def _blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def _vector(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32)


@dataclass(frozen=True)
class Correction:
    doc: str
    label: str
    action: str  # "add" | "remove"
    at: str

    def to_dict(self) -> dict[str, str]:
        return {"id": self.doc, "label": self.label, "action": self.action, "at": self.at}


@dataclass(frozen=True)
class TaughtLabel:
    """A taught label without its vectors."""

    name: str
    created: str
    trained: str
    threshold: float
    precision: float
    recall: float
    negatives: int
    positives: int
    #: applying to the existing collection: `state` pending | applying | done | failed
    applied: int
    to_apply: int
    state: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "examples": self.positives,
            "negatives": self.negatives,
            "precision": round(self.precision, 3),
            "recall": round(self.recall, 3),
            "threshold": round(self.threshold, 4),
            "created": self.created,
            "trained": self.trained,
            "applying": {"state": self.state, "done": self.applied, "total": self.to_apply},
        }


@dataclass(frozen=True)
class Model:
    """What applying a label needs."""

    name: str
    centroid: np.ndarray
    threshold: float


class CustomStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._database = Database(self.path, _MIGRATIONS)

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> CustomStore:
        return cls(Path(data_dir) / FILE_NAME)

    def close(self) -> None:
        self._database.close()

    def _db(self) -> sqlite3.Connection:
        return self._database.connection()

    @staticmethod
    def _bump(db: sqlite3.Connection) -> None:
        db.execute(
            "INSERT INTO meta (key, value) VALUES ('generation', 1) "
            "ON CONFLICT (key) DO UPDATE SET value = value + 1"
        )

    def generation(self) -> int:
        row = self._db().execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0]) if row else 0

    # -- corrections ----------------------------------------------------------------------------

    def correct(self, doc: str, label: str, action: str) -> None:
        with self._database.transaction() as db:
            db.execute(
                "INSERT INTO corrections (doc, label_lower, label, action, at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (doc, label_lower) DO UPDATE SET "
                "label = excluded.label, action = excluded.action, at = excluded.at",
                (doc, label.lower(), label, action, utc_now().isoformat(timespec="seconds")),
            )
            self._bump(db)

    def corrections(self, docs: Iterable[str]) -> dict[str, list[Correction]]:
        """Each image's corrections, oldest first."""
        wanted = list(dict.fromkeys(docs))
        found: dict[str, list[Correction]] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = self._db().execute(
                "SELECT doc, label, action, at FROM corrections WHERE doc IN "
                f"({','.join('?' * len(chunk))}) ORDER BY at",
                chunk,
            )
            for doc, label, action, at in rows:
                found.setdefault(doc, []).append(Correction(doc, label, action, at))
        return found

    # -- taught labels --------------------------------------------------------------------------

    def save_label(
        self,
        name: str,
        model: Model,
        precision: float,
        recall: float,
        negatives: int,
        examples: Sequence[tuple[str, bool, np.ndarray]],
    ) -> None:
        """Create or retrain `name`: its model and its whole example set, replaced together."""
        now = utc_now().isoformat(timespec="seconds")
        key = name.lower()
        with self._database.transaction() as db:
            db.execute(
                "INSERT INTO labels (name_lower, name, created, trained, centroid, threshold, "
                "precision, recall, negatives, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "'pending') ON CONFLICT (name_lower) DO UPDATE SET trained = excluded.trained, "
                "centroid = excluded.centroid, threshold = excluded.threshold, "
                "precision = excluded.precision, recall = excluded.recall, "
                "negatives = excluded.negatives, state = 'pending', applied = 0, to_apply = 0",
                (
                    key,
                    name,
                    now,
                    now,
                    _blob(model.centroid),
                    model.threshold,
                    precision,
                    recall,
                    negatives,
                ),
            )
            db.execute("DELETE FROM examples WHERE label_lower = ?", (key,))
            db.executemany(
                "INSERT INTO examples (label_lower, doc, positive, embedding) VALUES (?, ?, ?, ?)",
                [(key, doc, int(positive), _blob(v)) for doc, positive, v in examples],
            )
            self._bump(db)

    def forget(self, name: str) -> bool:
        key = name.lower()
        with self._database.transaction() as db:
            gone = db.execute("DELETE FROM labels WHERE name_lower = ?", (key,)).rowcount
            db.execute("DELETE FROM examples WHERE label_lower = ?", (key,))
            self._bump(db)
        return bool(gone)

    def progress(self, name: str, done: int, total: int, state: str) -> None:
        self._db().execute(
            "UPDATE labels SET applied = ?, to_apply = ?, state = ? WHERE name_lower = ?",
            (done, total, state, name.lower()),
        )

    _COLUMNS = (
        "name, created, trained, threshold, precision, recall, negatives, "
        "(SELECT COUNT(*) FROM examples e WHERE e.label_lower = l.name_lower AND e.positive), "
        "applied, to_apply, state"
    )

    def labels(self) -> list[TaughtLabel]:
        rows = self._db().execute(f"SELECT {self._COLUMNS} FROM labels l ORDER BY name_lower")
        return [TaughtLabel(*row) for row in rows]

    def label(self, name: str) -> TaughtLabel | None:
        row = (
            self._db()
            .execute(f"SELECT {self._COLUMNS} FROM labels l WHERE name_lower = ?", (name.lower(),))
            .fetchone()
        )
        return TaughtLabel(*row) if row else None

    def models(self) -> list[Model]:
        rows = self._db().execute("SELECT name, centroid, threshold FROM labels ORDER BY name")
        return [Model(name, _vector(blob), float(t)) for name, blob, t in rows]

    # -- drafts: examples of a label not taught yet -------------------------------------------

    def add_draft(self, name: str, doc: str, vector: np.ndarray) -> None:
        """Keep `doc` as an example of the label-to-be `name` (again: nothing changes)."""
        with self._database.transaction() as db:
            db.execute(
                "INSERT INTO drafts (label_lower, name, doc, embedding, at) VALUES "
                "(?, ?, ?, ?, ?) ON CONFLICT (label_lower, doc) DO NOTHING",
                (name.lower(), name, doc, _blob(vector), utc_now().isoformat(timespec="seconds")),
            )

    def drafts(self, name: str) -> list[tuple[str, str, np.ndarray]]:
        """(name as first typed, image id, visual embedding) of each collected example."""
        rows = self._db().execute(
            "SELECT name, doc, embedding FROM drafts WHERE label_lower = ? ORDER BY at, doc",
            (name.lower(),),
        )
        return [(shown, doc, _vector(blob)) for shown, doc, blob in rows]

    def drafted(self) -> list[tuple[str, int]]:
        """Each label being collected, with how many examples it has."""
        rows = self._db().execute(
            "SELECT MIN(name), COUNT(*) FROM drafts GROUP BY label_lower ORDER BY label_lower"
        )
        return [(str(name), int(count)) for name, count in rows]

    def drop_drafts(self, name: str) -> int:
        cursor = self._db().execute("DELETE FROM drafts WHERE label_lower = ?", (name.lower(),))
        return cursor.rowcount

    def examples(self, name: str) -> list[tuple[str, bool, np.ndarray]]:
        """(image id, positive, visual embedding) of each example, positives first."""
        rows = self._db().execute(
            "SELECT doc, positive, embedding FROM examples WHERE label_lower = ? "
            "ORDER BY positive DESC, doc",
            (name.lower(),),
        )
        return [(doc, bool(positive), _vector(blob)) for doc, positive, blob in rows]
