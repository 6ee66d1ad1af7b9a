"""The people step of recognition: an embedding for each face the `faces` analyzer found, made
while the decoded picture is still in memory, then the faces' places among people.

It runs inside the pipeline's recognition stage (not as an enricher: enrichers see documents,
after the pixels are freed). It is recorded in `analyzed_with` as `face_recognition` with the
descriptor's version, so `imagedex reprocess` finds the images that lack it when the setting is
turned on, and redoes them when the descriptor changes.

The store is the data dir's `people.sqlite3`. Each analysed image's stored faces are replaced by
what this analysis embedded: none when the step did not run (switched off, or the image was
analysed without the `faces` analyzer), so the store never keeps faces its document no longer
shows. With the step off and no store yet, nothing is created.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from imagedex.documents import ImageDocument
from imagedex.index.base import SearchIndex
from imagedex.people import manage
from imagedex.people.clustering import Rule
from imagedex.people.store import FILE_NAME, NewFace, PeopleStore
from imagedex.recognition.face_embedding import FaceEmbedder

NAME = "face_recognition"
VERSION = FaceEmbedder.version
FACES_ANALYZER = "faces"


def versions_for(settings: Any, analyzers: Mapping[str, str]) -> dict[str, str]:
    """What the step adds to `analyzed_with` for these settings and analyzer versions: itself
    when face recognition is on and the `faces` analyzer runs, else nothing."""
    if getattr(settings, "face_recognition", False) and FACES_ANALYZER in analyzers:
        return {NAME: VERSION}
    return {}


def has_eyes(face: Any) -> bool:
    landmarks = face.get("landmarks") if isinstance(face, Mapping) else None
    if not isinstance(landmarks, Mapping):
        return False
    return all(isinstance(landmarks.get(eye), Mapping) for eye in ("left_eye", "right_eye"))


class FaceRecognition:
    """Embeds faces (`embed`, during recognition) and records them among people (`record`)."""

    name = NAME
    version = VERSION

    def __init__(
        self,
        data_dir: Path,
        embedder: FaceEmbedder | None = None,
        rule: Rule | None = None,
        threads: int | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.embedder = embedder or FaceEmbedder(threads=threads)
        self.rule = rule
        self._store: PeopleStore | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> FaceRecognition:
        return cls(settings.data_dir, threads=settings.recognition_threads or None)

    def store(self) -> PeopleStore:
        if self._store is None:
            self._store = PeopleStore.in_data_dir(self.data_dir)
        return self._store

    def embed(self, image: Image.Image, faces: Sequence[Any]) -> list[tuple[int, np.ndarray]]:
        """(face index, embedding) for each face that has both eye landmarks (faces without
        them, from an older analyzer, are left out)."""
        wanted = [i for i, face in enumerate(faces) if has_eyes(face)]
        if not wanted:
            return []
        vectors = self.embedder.embed(image, [faces[i] for i in wanted])
        return list(zip(wanted, vectors, strict=True))

    def record(
        self, documents: Sequence[tuple[ImageDocument, Sequence[tuple[int, np.ndarray]]]]
    ) -> set[str]:
        """Replace each document's stored faces with these, place them among people and set the
        documents' `faces[].person_id`; the ids of documents outside `documents` whose faces
        gained a person meanwhile (to re-sync once these are indexed)."""
        store = self.store()
        others: set[str] = set()
        for doc, embedded in documents:
            faces = [
                NewFace(
                    doc.id,
                    i,
                    dict(doc.faces[i].get("bbox") or {}),
                    float(doc.faces[i].get("confidence") or 0.0),
                    vector,
                )
                for i, vector in embedded
            ]
            others |= manage.record_faces(store, doc, faces, self.rule)
        # a later document of the batch may have completed a person with an earlier one's faces
        for doc, _ in documents:
            manage.set_person_ids(doc, store.document_people(doc.id))
        return others - {doc.id for doc, _ in documents}

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def forget_documents(data_dir: Path, doc_ids: Iterable[str]) -> None:
    """Remove the stored faces of these documents (deleted, or analysed without the step);
    nothing happens, and no store is created, when the data dir has none."""
    ids = list(dict.fromkeys(doc_ids))
    path = Path(data_dir) / FILE_NAME
    if not ids or not path.is_file():
        return
    store = PeopleStore(path)
    try:
        with store.transaction() as db:
            for doc_id in ids:
                store.remove_document(db, doc_id)
    finally:
        store.close()


def sync(data_dir: Path, index: SearchIndex, doc_ids: Iterable[str]) -> None:
    """Write the people store's person ids into these indexed documents."""
    ids = set(doc_ids)
    if not ids:
        return
    store = PeopleStore.in_data_dir(Path(data_dir))
    try:
        manage.sync_documents(store, index, ids)
    finally:
        store.close()
