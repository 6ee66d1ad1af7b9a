"""What a document's labels become once corrections and taught labels are applied.

Order matters and is the same everywhere (ingest, reprocess, `tag`, `custom teach`):
1. the analyzers' labels, combined and above the floor (`recognition/evidence.py`);
2. taught labels whose model scores the image's visual embedding at or above its threshold, with
   a confidence from 50 (at the threshold) to 100; they come after the floor because the
   threshold already is the decision;
3. a person's corrections last, because a person's word beats any model: `remove` drops the
   label and takes its name out of the other labels' parents and aliases (so a search for it no
   longer finds the image through "Golden Retriever" either); `add` puts it at 100 %.
Applying is idempotent: a document's earlier taught labels are dropped before step 2.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from imagedex.custom.store import FILE_NAME, Correction, CustomStore, Model
from imagedex.custom.training import confidence
from imagedex.documents import ImageDocument, Label


def person_label(name: str) -> Label:
    """A label a person added: the vocabulary's spelling, parents and aliases where it is one
    of its labels (so `dog` is found by `animal` too)."""
    from imagedex.recognition.vocabulary import load_vocabulary

    term = load_vocabulary().term(name)
    if term is None:
        return Label(name, 100.0)
    return Label(term.name, 100.0, term.parents, term.aliases)


def corrected(labels: Sequence[Label], corrections: Sequence[Correction]) -> list[Label]:
    removed = {c.label.lower() for c in corrections if c.action == "remove"}
    added = [c.label for c in corrections if c.action == "add"]
    adding = {name.lower() for name in added}
    kept = [
        Label(
            lb.label,
            lb.confidence,
            tuple(p for p in lb.parents if p.lower() not in removed),
            tuple(a for a in lb.aliases if a.lower() not in removed),
            lb.instances,
        )
        for lb in labels
        if lb.label.lower() not in removed and lb.label.lower() not in adding
    ]
    return [*kept, *(person_label(name) for name in added)]


def taught(
    labels: Sequence[Label], visual: Sequence[float] | None, models: Sequence[Model]
) -> list[Label]:
    """`labels` without earlier taught labels, plus those the models give the image now."""
    scores = None
    if visual is not None and models:
        scores = _centroids(models) @ np.asarray(visual, dtype=np.float32)
    return _taught_from(labels, scores, models)


def _centroids(models: Sequence[Model]) -> np.ndarray:
    return np.stack([m.centroid for m in models]).astype(np.float32, copy=False)


def _taught_from(
    labels: Sequence[Label], scores: np.ndarray | None, models: Sequence[Model]
) -> list[Label]:
    names = {m.name.lower() for m in models}
    kept = [lb for lb in labels if lb.label.lower() not in names]
    if scores is None:
        return kept
    found = [
        Label(m.name, confidence(float(score), m.threshold))
        for m, score in zip(models, scores.tolist(), strict=True)
        if score >= m.threshold
    ]
    return [*kept, *sorted(found, key=lambda lb: -lb.confidence)]


def relabel(
    document: ImageDocument, models: Sequence[Model], corrections: Sequence[Correction]
) -> None:
    document.labels = corrected(
        taught(document.labels, document.visual_embedding, models), corrections
    )


def relabel_all(
    documents: Sequence[ImageDocument],
    models: Sequence[Model],
    corrections: dict[str, list[Correction]],
) -> None:
    """`relabel` for many documents, every model scored on all of them in one matrix product
    (what makes re-labelling a large collection cheap)."""
    scores: dict[int, np.ndarray] = {}
    embedded = [i for i, d in enumerate(documents) if d.visual_embedding is not None]
    if models and embedded:
        vectors = np.array([documents[i].visual_embedding for i in embedded], dtype=np.float32)
        for i, row in zip(embedded, vectors @ _centroids(models).T, strict=True):
            scores[i] = row
    for i, document in enumerate(documents):
        document.labels = corrected(
            _taught_from(document.labels, scores.get(i), models),
            corrections.get(document.id, []),
        )


class LabelBook:
    """The pipeline's view of `custom.sqlite3`: the models reloaded only when the store changed;
    nothing opened (or created) until the file exists."""

    def __init__(self, data_dir: Path) -> None:
        self._path = Path(data_dir) / FILE_NAME
        self._store: CustomStore | None = None
        self._models: list[Model] = []
        self._generation = -1
        self._lock = threading.Lock()

    def apply(self, documents: Sequence[ImageDocument]) -> None:
        if not documents or (self._store is None and not self._path.exists()):
            return
        with self._lock:
            if self._store is None:
                self._store = CustomStore(self._path)
            generation = self._store.generation()
            if generation != self._generation:
                self._models, self._generation = self._store.models(), generation
            models = self._models
            corrections = self._store.corrections(d.id for d in documents)
        relabel_all(documents, models, corrections)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
