"""Rekognition face collections, kept in `rekognition.sqlite3` in the data dir (so `imagedex
backup` copies it): each collection, and each indexed face with its box, confidence, image ids and
128-d descriptor. Separate from imagedex's people (`people.sqlite3`): a collection is a caller's
own set of faces, and nothing here reads or writes the index.

Descriptors are biometric data: they are stored as float32 blobs, read only to compare, never
answered. `secure_delete` makes SQLite overwrite what DeleteFaces and DeleteCollection remove, and
the write-ahead log is checkpointed after them, so the removed descriptors do not linger there.
Searching scans a collection in blocks of `_BLOCK` faces, keeping the best matches only, so
memory stays bounded whatever the collection's size; time grows with it (docs/rekognition.md).
"""

from __future__ import annotations

import heapq
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imagedex.db import Database
from imagedex.recognition.face_embedding import DESCRIPTOR_SIZE, distances

FILE_NAME = "rekognition.sqlite3"
_BLOCK = 4096

_SCHEMA = [
    """
    CREATE TABLE IF NOT EXISTS collections (
        id TEXT PRIMARY KEY,
        created REAL NOT NULL,
        face_model TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS faces (
        face_id TEXT PRIMARY KEY,
        collection TEXT NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
        image_id TEXT NOT NULL,
        external_image_id TEXT,
        left REAL NOT NULL,
        top REAL NOT NULL,
        width REAL NOT NULL,
        height REAL NOT NULL,
        confidence REAL NOT NULL,
        descriptor BLOB NOT NULL
    );
    CREATE INDEX IF NOT EXISTS faces_by_collection ON faces (collection, face_id);
    """
]


@dataclass(frozen=True)
class Collection:
    id: str
    created: float
    face_model: str
    face_count: int


@dataclass(frozen=True)
class StoredFace:
    face_id: str
    image_id: str
    external_image_id: str | None
    box: tuple[float, float, float, float]  # left, top, width, height as fractions
    confidence: float


@dataclass(frozen=True)
class NewFace:
    face: StoredFace
    descriptor: np.ndarray


_FACE_COLUMNS = "face_id, image_id, external_image_id, left, top, width, height, confidence"


def _face(row: Sequence[object]) -> StoredFace:
    face_id, image_id, external, left, top, width, height, confidence = row
    return StoredFace(
        str(face_id),
        str(image_id),
        None if external is None else str(external),
        (float(left), float(top), float(width), float(height)),  # type: ignore[arg-type]
        float(confidence),  # type: ignore[arg-type]
    )


class CollectionExistsError(Exception):
    pass


class CollectionStore:
    def __init__(self, data_dir: Path) -> None:
        self.db = Database(
            Path(data_dir) / FILE_NAME,
            _SCHEMA,
            foreign_keys=True,
            pragmas={"secure_delete": "ON"},
        )

    def close(self) -> None:
        self.db.close()

    # -- collections ----------------------------------------------------------------------------

    def create(self, collection_id: str, face_model: str) -> Collection:
        """CollectionExistsError when the id is taken."""
        now = time.time()
        try:
            with self.db.transaction() as db:
                db.execute(
                    "INSERT INTO collections (id, created, face_model) VALUES (?, ?, ?)",
                    (collection_id, now, face_model),
                )
        except sqlite3.IntegrityError:
            raise CollectionExistsError(collection_id) from None
        return Collection(collection_id, now, face_model, 0)

    def get(self, collection_id: str) -> Collection | None:
        db = self.db.connection()
        row = db.execute(
            "SELECT id, created, face_model, (SELECT count(*) FROM faces WHERE collection = id) "
            "FROM collections WHERE id = ?",
            (collection_id,),
        ).fetchone()
        return None if row is None else Collection(row[0], row[1], row[2], row[3])

    def list_collections(self, after: str | None, limit: int) -> list[Collection]:
        rows = (
            self.db.connection()
            .execute(
                "SELECT id, created, face_model FROM collections WHERE id > ? ORDER BY id LIMIT ?",
                (after or "", limit),
            )
            .fetchall()
        )
        return [Collection(r[0], r[1], r[2], -1) for r in rows]

    def delete(self, collection_id: str) -> bool:
        """Whether there was such a collection; its faces go with it."""
        with self.db.transaction() as db:
            found = db.execute("DELETE FROM collections WHERE id = ?", (collection_id,)).rowcount
        self._checkpoint()
        return found > 0

    def _checkpoint(self) -> None:
        # deleted descriptors also sit in the write-ahead log until it is checkpointed; a reader
        # in the way only makes this a partial checkpoint, retried at the next delete
        self.db.connection().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    # -- faces ----------------------------------------------------------------------------------

    def add_faces(self, collection_id: str, faces: Sequence[NewFace]) -> bool:
        """Store the faces; False (nothing stored) when the collection is gone."""
        with self.db.transaction() as db:
            if db.execute("SELECT 1 FROM collections WHERE id = ?", (collection_id,)).fetchone():
                db.executemany(
                    f"INSERT INTO faces (collection, {_FACE_COLUMNS}, descriptor) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            collection_id,
                            f.face.face_id,
                            f.face.image_id,
                            f.face.external_image_id,
                            *f.face.box,
                            f.face.confidence,
                            np.asarray(f.descriptor, dtype="<f4").tobytes(),
                        )
                        for f in faces
                    ],
                )
                return True
            return False

    def faces(
        self, collection_id: str, after: str | None, limit: int, only: Sequence[str] = ()
    ) -> list[StoredFace]:
        sql = f"SELECT {_FACE_COLUMNS} FROM faces WHERE collection = ? AND face_id > ?"
        args: list[object] = [collection_id, after or ""]
        if only:
            sql += f" AND face_id IN ({', '.join('?' * len(only))})"
            args += list(only)
        rows = self.db.connection().execute(sql + " ORDER BY face_id LIMIT ?", (*args, limit))
        return [_face(r) for r in rows.fetchall()]

    def descriptor(self, collection_id: str, face_id: str) -> np.ndarray | None:
        row = (
            self.db.connection()
            .execute(
                "SELECT descriptor FROM faces WHERE collection = ? AND face_id = ?",
                (collection_id, face_id),
            )
            .fetchone()
        )
        return None if row is None else np.frombuffer(row[0], dtype="<f4")

    def delete_faces(self, collection_id: str, face_ids: Sequence[str]) -> set[str]:
        """The ids that were deleted."""
        with self.db.transaction() as db:
            deleted = set()
            for face_id in dict.fromkeys(face_ids):
                cursor = db.execute(
                    "DELETE FROM faces WHERE collection = ? AND face_id = ?",
                    (collection_id, face_id),
                )
                if cursor.rowcount:
                    deleted.add(face_id)
        if deleted:
            self._checkpoint()
        return deleted

    def _blocks(self, collection_id: str) -> Iterator[tuple[list[StoredFace], np.ndarray]]:
        after = ""
        db = self.db.connection()
        while True:
            rows = db.execute(
                f"SELECT {_FACE_COLUMNS}, descriptor FROM faces "
                "WHERE collection = ? AND face_id > ? ORDER BY face_id LIMIT ?",
                (collection_id, after, _BLOCK),
            ).fetchall()
            if not rows:
                return
            yield (
                [_face(r[:-1]) for r in rows],
                np.frombuffer(b"".join(r[-1] for r in rows), dtype="<f4").reshape(
                    -1, DESCRIPTOR_SIZE
                ),
            )
            after = rows[-1][0]

    def search(
        self,
        collection_id: str,
        descriptor: np.ndarray,
        max_distance: float,
        limit: int,
        skip: str | None = None,
    ) -> list[tuple[float, StoredFace]]:
        """The `limit` nearest faces within `max_distance`, nearest first: (distance, face)."""
        best: list[tuple[float, str, StoredFace]] = []  # a heap of (-distance, id, face)
        query = np.asarray(descriptor, dtype=np.float32).reshape(1, DESCRIPTOR_SIZE)
        for faces, matrix in self._blocks(collection_id):
            for face, d in zip(faces, distances(query, matrix)[0], strict=True):
                if d > max_distance or face.face_id == skip:
                    continue
                item = (-float(d), face.face_id, face)
                if len(best) < limit:
                    heapq.heappush(best, item)
                elif item > best[0]:
                    heapq.heapreplace(best, item)
        return [(-d, face) for d, _, face in sorted(best, reverse=True)]
