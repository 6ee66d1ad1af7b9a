"""The people store: every face's embedding and the person it belongs to, in `people.sqlite3`.

- `faces`: one row per face of an indexed image (document id, its index in the document's
  `faces`, its box, its 128-d embedding as a float32 blob, its person or NULL while it waits);
- `people`: id, name ("" until someone names it), hidden, created;
- `face_rules`: what a person said about a face (`imagedex people split`): it is not a person
  (the clustering never places it there) or it is one (it goes back there when the image is
  reprocessed). Keyed by document and face index, not by the face's row id, so a reprocessed
  image (whose faces get new rows) keeps them.

Embeddings never leave this module except to the clustering (`embeddings()`); every answer a
person or a script sees is built from `Person` and `FaceRow`, which hold none.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imagedex.clock import utc_now
from imagedex.db import Database, Migration

FILE_NAME = "people.sqlite3"
EMBEDDING_DIM = 128

_SCHEMA = """
CREATE TABLE IF NOT EXISTS people (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    name_lower TEXT NOT NULL DEFAULT '',
    hidden INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS people_name ON people (name_lower);
CREATE TABLE IF NOT EXISTS faces (
    id INTEGER PRIMARY KEY,
    doc TEXT NOT NULL,
    face INTEGER NOT NULL,
    box TEXT NOT NULL,
    confidence REAL NOT NULL DEFAULT 0,
    embedding BLOB NOT NULL,
    person INTEGER REFERENCES people (id),
    UNIQUE (doc, face)
);
CREATE INDEX IF NOT EXISTS faces_person ON faces (person);
"""

_FACE_RULES = """
CREATE TABLE IF NOT EXISTS face_rules (
    doc TEXT NOT NULL,
    face INTEGER NOT NULL,
    person INTEGER NOT NULL,
    is_person INTEGER NOT NULL,
    PRIMARY KEY (doc, face, person)
);
CREATE INDEX IF NOT EXISTS face_rules_person ON face_rules (person);
"""

_MIGRATIONS: list[Migration] = [_SCHEMA, _FACE_RULES]


@dataclass(frozen=True)
class Person:
    id: int
    name: str
    hidden: bool
    created: str
    faces: int = 0
    #: the document and face index of the person's most confident face (the People page's
    #: thumbnail), or None for a person without faces
    cover: tuple[str, int] | None = None
    images: int = 0  # images showing the person (a group photo's faces may all be theirs)

    def to_dict(self) -> dict[str, Any]:
        cover = {"id": self.cover[0], "face": self.cover[1]} if self.cover else None
        return {
            "id": self.id,
            "name": self.name,
            "hidden": self.hidden,
            "created": self.created,
            "faces": self.faces,
            "images": self.images,
            "cover": cover,
        }


@dataclass(frozen=True)
class FaceRow:
    """One stored face without its embedding."""

    id: int
    doc: str
    face: int
    box: dict[str, float]
    confidence: float
    person: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "face_id": self.id,
            "id": self.doc,
            "face": self.face,
            "bbox": self.box,
            "confidence": self.confidence,
            "person_id": self.person,
        }


@dataclass(frozen=True)
class NewFace:
    """A face to store: where it is and what it looks like."""

    doc: str
    face: int
    box: dict[str, float]
    confidence: float
    embedding: np.ndarray


def encode(vector: np.ndarray) -> bytes:
    array = np.asarray(vector, dtype=np.float32).reshape(-1)
    if array.shape != (EMBEDDING_DIM,) or not np.all(np.isfinite(array)):
        raise ValueError(f"a face embedding is {EMBEDDING_DIM} finite numbers")
    return array.tobytes()


class PeopleStore:
    def __init__(self, path: Path | str) -> None:
        self._database = Database(path, _MIGRATIONS, foreign_keys=True)
        self.path = self._database.path

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> PeopleStore:
        return cls(Path(data_dir) / FILE_NAME)

    def transaction(self) -> Any:
        return self._database.transaction()

    def _db(self) -> sqlite3.Connection:
        return self._database.connection()

    # -- faces ----------------------------------------------------------------------------------

    def replace_faces(
        self, db: sqlite3.Connection, doc: str, faces: Sequence[NewFace]
    ) -> list[int]:
        """The faces of one document, replacing those stored before (a reprocessed image);
        their new row ids, in order. People left without faces are deleted, unless named."""
        self.remove_document(db, doc)
        ids = []
        for face in faces:
            cur = db.execute(
                "INSERT INTO faces (doc, face, box, confidence, embedding) VALUES (?, ?, ?, ?, ?)",
                (
                    doc,
                    face.face,
                    json.dumps(face.box, separators=(",", ":")),
                    float(face.confidence),
                    encode(face.embedding),
                ),
            )
            ids.append(int(cur.lastrowid or 0))
        # a face a person put somewhere goes back there (if that person still exists)
        db.execute(
            "UPDATE faces SET person = (SELECT r.person FROM face_rules r JOIN people p"
            " ON p.id = r.person WHERE r.doc = faces.doc AND r.face = faces.face"
            " AND r.is_person = 1) WHERE doc = ?",
            (doc,),
        )
        return ids

    def remove_document(self, db: sqlite3.Connection, doc: str) -> None:
        touched = [
            r[0]
            for r in db.execute(
                "SELECT DISTINCT person FROM faces WHERE doc = ? AND person IS NOT NULL", (doc,)
            )
        ]
        db.execute("DELETE FROM faces WHERE doc = ?", (doc,))
        self._drop_empty(db, touched)

    @staticmethod
    def _drop_empty(db: sqlite3.Connection, people: Iterable[int]) -> None:
        """Unnamed people without faces go; a named one stays (its name is someone's work)."""
        for person in people:
            db.execute(
                "DELETE FROM people WHERE id = ? AND name = ''"
                " AND NOT EXISTS (SELECT 1 FROM faces WHERE person = ?)",
                (person, person),
            )

    def embeddings(self, db: sqlite3.Connection) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every face: (row ids, person ids with -1 for none, [n, 128] float32 embeddings)."""
        rows = db.execute("SELECT id, COALESCE(person, -1), embedding FROM faces ORDER BY id")
        ids: list[int] = []
        people: list[int] = []
        blobs: list[bytes] = []
        for face_id, person, blob in rows:
            ids.append(face_id)
            people.append(person)
            blobs.append(blob)
        matrix = (
            np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(-1, EMBEDDING_DIM)
            if blobs
            else np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        )
        return np.array(ids, dtype=np.int64), np.array(people, dtype=np.int64), matrix

    def barred(self, db: sqlite3.Connection) -> dict[int, set[int]]:
        """Face row id -> the people it must not join (what `split` recorded)."""
        found: dict[int, set[int]] = {}
        for face_id, person in db.execute(
            "SELECT f.id, r.person FROM face_rules r JOIN faces f"
            " ON f.doc = r.doc AND f.face = r.face WHERE r.is_person = 0"
        ):
            found.setdefault(int(face_id), set()).add(int(person))
        return found

    def face(self, face_id: int) -> FaceRow | None:
        row = (
            self._db()
            .execute(
                "SELECT id, doc, face, box, confidence, person FROM faces WHERE id = ?",
                (face_id,),
            )
            .fetchone()
        )
        return _face(row) if row else None

    def move_face(self, db: sqlite3.Connection, face: FaceRow, person: int | None) -> None:
        """A person's decision: `face` is not its current person; it is `person` (or nobody,
        waiting). Recorded as rules the clustering and later reprocessing keep to."""
        key = (face.doc, face.face)
        if face.person is not None:
            db.execute(
                "INSERT OR REPLACE INTO face_rules (doc, face, person, is_person)"
                " VALUES (?, ?, ?, 0)",
                (*key, face.person),
            )
        db.execute("DELETE FROM face_rules WHERE doc = ? AND face = ? AND is_person = 1", key)
        if person is not None:
            db.execute(
                "INSERT OR REPLACE INTO face_rules (doc, face, person, is_person)"
                " VALUES (?, ?, ?, 1)",
                (*key, person),
            )
        db.execute("UPDATE faces SET person = ? WHERE id = ?", (person, face.id))
        if face.person is not None:
            self._drop_empty(db, [face.person])

    def assign(self, db: sqlite3.Connection, face_ids: Iterable[int], person: int) -> None:
        db.executemany(
            "UPDATE faces SET person = ? WHERE id = ?", [(person, int(f)) for f in face_ids]
        )

    def create_person(self, db: sqlite3.Connection, name: str = "") -> int:
        # never the id of a person a rule names (a deleted one's id would be reused otherwise)
        cur = db.execute(
            "INSERT INTO people (id, name, name_lower, created) VALUES (1 + MAX("
            "(SELECT COALESCE(MAX(id), 0) FROM people),"
            " (SELECT COALESCE(MAX(person), 0) FROM face_rules)), ?, ?, ?)",
            (name, name.lower(), utc_now().isoformat(timespec="seconds")),
        )
        return int(cur.lastrowid or 0)

    def faces_of_document(self, doc: str) -> list[FaceRow]:
        rows = self._db().execute(
            "SELECT id, doc, face, box, confidence, person FROM faces WHERE doc = ? ORDER BY face",
            (doc,),
        )
        return [_face(row) for row in rows]

    def documents_of(self, db: sqlite3.Connection, people: Iterable[int]) -> set[str]:
        found: set[str] = set()
        for person in people:
            found.update(
                r[0] for r in db.execute("SELECT doc FROM faces WHERE person = ?", (person,))
            )
        return found

    def documents_with_people(self) -> set[str]:
        rows = self._db().execute("SELECT DISTINCT doc FROM faces WHERE person IS NOT NULL")
        return {r[0] for r in rows}

    def document_people(self, doc: str) -> dict[int, int | None]:
        """Face index -> person id of one document."""
        rows = self._db().execute("SELECT face, person FROM faces WHERE doc = ?", (doc,))
        return {int(face): person for face, person in rows}

    # -- people ---------------------------------------------------------------------------------

    def people(
        self, include_hidden: bool = True, limit: int = 1000, offset: int = 0
    ) -> list[Person]:
        """People with their face counts, most faces first."""
        rows = (
            self._db()
            .execute(
                "SELECT p.id, p.name, p.hidden, p.created, COUNT(f.id) AS n,"
                " COUNT(DISTINCT f.doc) FROM people p"
                " LEFT JOIN faces f ON f.person = p.id"
                + ("" if include_hidden else " WHERE p.hidden = 0")
                + " GROUP BY p.id ORDER BY n DESC, p.id LIMIT ? OFFSET ?",
                (limit, offset),
            )
            .fetchall()
        )
        return [self._person(row) for row in rows]

    def _person(self, row: Sequence[Any]) -> Person:
        person_id, name, hidden, created, count, images = row
        cover = (
            self._db()
            .execute(
                "SELECT doc, face FROM faces WHERE person = ? ORDER BY confidence DESC, id LIMIT 1",
                (person_id,),
            )
            .fetchone()
        )
        return Person(
            int(person_id),
            name,
            bool(hidden),
            created,
            int(count),
            (cover[0], int(cover[1])) if cover else None,
            int(images),
        )

    def get(self, person_id: int) -> Person | None:
        row = (
            self._db()
            .execute(
                "SELECT p.id, p.name, p.hidden, p.created,"
                " (SELECT COUNT(*) FROM faces WHERE person = p.id),"
                " (SELECT COUNT(DISTINCT doc) FROM faces WHERE person = p.id)"
                " FROM people p WHERE p.id = ?",
                (person_id,),
            )
            .fetchone()
        )
        return self._person(row) if row else None

    def hidden_ids(self) -> list[int]:
        return [r[0] for r in self._db().execute("SELECT id FROM people WHERE hidden = 1")]

    def find(self, reference: str) -> list[Person]:
        """People a person reference names: its id (`12` or `#12`), else every person whose name
        is the reference (case-insensitive)."""
        text = reference.strip()
        digits = text.removeprefix("#")
        if digits.isascii() and digits.isdigit() and len(digits) <= 18:  # SQLite's integers
            person = self.get(int(digits))
            if person is not None:
                return [person]
        ids = [
            r[0]
            for r in self._db().execute(
                "SELECT id FROM people WHERE name_lower = ? ORDER BY id", (text.lower(),)
            )
        ]
        return [p for p in (self.get(i) for i in ids) if p is not None]

    def faces_of(self, person_id: int, limit: int = 100, offset: int = 0) -> list[FaceRow]:
        rows = self._db().execute(
            "SELECT id, doc, face, box, confidence, person FROM faces WHERE person = ?"
            " ORDER BY confidence DESC, id LIMIT ? OFFSET ?",
            (person_id, limit, offset),
        )
        return [_face(row) for row in rows]

    def rename(self, person_id: int, name: str) -> None:
        with self._database.transaction() as db:
            db.execute(
                "UPDATE people SET name = ?, name_lower = ? WHERE id = ?",
                (name, name.lower(), person_id),
            )

    def set_hidden(self, person_id: int, hidden: bool) -> None:
        with self._database.transaction() as db:
            db.execute("UPDATE people SET hidden = ? WHERE id = ?", (int(hidden), person_id))

    def merge(self, db: sqlite3.Connection, keep: int, other: int) -> None:
        """Every face of `other` becomes `keep`'s; `other` is deleted."""
        db.execute("UPDATE faces SET person = ? WHERE person = ?", (keep, other))
        # the same person: what was said about `other` holds for `keep`
        db.execute("UPDATE OR IGNORE face_rules SET person = ? WHERE person = ?", (keep, other))
        db.execute("DELETE FROM face_rules WHERE person = ?", (other,))
        db.execute("DELETE FROM people WHERE id = ?", (other,))

    def forget(self) -> tuple[int, int]:
        """Delete every face embedding and every person; (faces, people) deleted."""
        with self._database.transaction() as db:
            faces = db.execute("DELETE FROM faces").rowcount
            db.execute("DELETE FROM face_rules")
            people = db.execute("DELETE FROM people").rowcount
        # the deleted embeddings must not linger in free pages or the write-ahead log
        self._db().execute("VACUUM")
        self._db().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(faces), int(people)

    def counts(self) -> tuple[int, int, int]:
        """(faces, faces waiting for a person, people)."""
        row = (
            self._db()
            .execute(
                "SELECT (SELECT COUNT(*) FROM faces),"
                " (SELECT COUNT(*) FROM faces WHERE person IS NULL),"
                " (SELECT COUNT(*) FROM people)"
            )
            .fetchone()
        )
        return int(row[0]), int(row[1]), int(row[2])

    def close(self) -> None:
        self._database.close()


def _face(row: Sequence[Any]) -> FaceRow:
    face_id, doc, face, box, confidence, person = row
    return FaceRow(int(face_id), doc, int(face), json.loads(box), float(confidence), person)


class PeopleResolver:
    """Person references (ids or names, as typed in `person:"Anna"`) to person ids, for the
    search indexes. Opens the data dir's people store on first use, and only if it exists (a
    search never creates it); an unknown reference names nobody."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / FILE_NAME
        self._store: PeopleStore | None = None

    def __call__(self, reference: str) -> list[int]:
        if self._store is None:
            if not self.path.is_file():
                return []
            self._store = PeopleStore(self.path)
        return [person.id for person in self._store.find(reference)]
