"""Teach, retrain and forget labels; correct one image's labels; re-label the collection.

Every change is stored in `custom.sqlite3` first, then the affected documents are rewritten
through the index's own `upsert` (so it works on every backend and nothing else of a document
changes). A correction of a taught label is also an example for it: `tag add` a positive,
`tag remove` a negative, and the label is retrained.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from imagedex.custom.apply import relabel_all
from imagedex.custom.examples import (
    CustomLabelError,
    clean_label,
    find_image,
    resolve_example,
    visual_of,
)
from imagedex.custom.store import CustomStore, Model, TaughtLabel
from imagedex.custom.training import MIN_EXAMPLES, train
from imagedex.documents import ImageDocument

log = logging.getLogger("imagedex.custom")
NEGATIVE_SAMPLE = 300  # negatives drawn from the collection
NEGATIVE_SCAN = 5000  # documents read at most to find them (teaching stays quick at 1M)
WRITE_BATCH = 200


class LabelNotFoundError(CustomLabelError):
    """No taught label has that name."""


def store_of(services: Any) -> CustomStore:
    return CustomStore.in_data_dir(services.settings.data_dir)


@lru_cache(maxsize=1)
def built_in_names() -> frozenset[str]:
    """Lower-cased names the analyzers give: the vocabulary's labels and aliases, ImageNet's and
    COCO's classes (a taught label with one of them would be mixed up with the model's)."""
    from imagedex.recognition.vocabulary import display_name, load_vocabulary

    vocabulary = load_vocabulary()
    names = {t.name.lower() for t in vocabulary.terms.values()}
    names |= {a.lower() for t in vocabulary.terms.values() for a in t.aliases}
    data = resources.files("imagedex.recognition") / "data"
    for entry in json.loads((data / "imagenet_labels.json").read_text("utf-8")):
        names.add(display_name(entry["name"]).lower())
    names |= {str(n).lower() for n in json.loads((data / "coco_labels.json").read_text("utf-8"))}
    return frozenset(names)


def _check_new_name(name: str) -> None:
    if name.lower() in built_in_names():
        raise CustomLabelError(
            f"{name!r} is a label the analyzers already give: teach it under a name of your "
            f"own (for example {name + ' (ours)'!r}), or correct single images with `imagedex "
            "tag add`"
        )


def _negatives(
    services: Any, store: CustomStore, name: str, positives: set[str]
) -> list[np.ndarray]:
    """A sample of the collection, leaving out the examples and images a person tagged with it."""
    found: list[np.ndarray] = []
    scanned = 0
    for doc in services.index.iter_documents():
        scanned += 1
        if scanned > NEGATIVE_SCAN or len(found) >= NEGATIVE_SAMPLE:
            break
        if doc.id in positives or not doc.visual_embedding:
            continue
        if any(lb.label.lower() == name.lower() for lb in doc.labels):
            continue  # already has it (a person's tag, or the model's earlier decision)
        found.append(np.asarray(doc.visual_embedding, dtype=np.float32))
    return found


def _retrain(
    services: Any,
    store: CustomStore,
    name: str,
    examples: Sequence[tuple[str, bool, np.ndarray]],
) -> TaughtLabel:
    positives = [v for _, positive, v in examples if positive]
    if len(positives) < MIN_EXAMPLES:
        raise CustomLabelError(
            f"teaching {name!r} needs at least {MIN_EXAMPLES} different example images "
            f"(it has {len(positives)}): add more"
        )
    told = [v for _, positive, v in examples if not positive]
    sampled = _negatives(services, store, name, {doc for doc, _, _ in examples})
    negatives = np.array([*told, *sampled], dtype=np.float32).reshape(-1, len(positives[0]))
    trained = train(np.array(positives), negatives)
    model = Model(name, trained.centroid, trained.threshold)
    store.save_label(name, model, trained.precision, trained.recall, len(negatives), list(examples))
    found = store.label(name)
    assert found is not None
    return found


def teach(
    services: Any,
    store: CustomStore,
    name: str,
    references: Sequence[str],
    files: bool = True,
) -> TaughtLabel:
    """Create `name` from example images, or add these examples to it; retrains either way.
    Nothing is written unless every example is good. `files`: examples may be image files."""
    name = clean_label(name)
    existing = store.label(name)
    if existing is None:
        _check_new_name(name)
    else:
        name = existing.name
    if existing is None and len(set(references)) < MIN_EXAMPLES:
        raise CustomLabelError(
            f"teaching {name!r} needs at least {MIN_EXAMPLES} example images "
            f"(given {len(set(references))}): a label learnt from fewer cannot be checked"
        )
    examples = {doc: (doc, positive, v) for doc, positive, v in store.examples(name)}
    removed = _removed_by_a_person(store, name, examples)
    for reference in references:
        example_id, shown, vector = resolve_example(services, reference, files)
        earlier = examples.get(example_id)
        said = store.corrections([example_id]).get(example_id, [])
        if any(c.action == "remove" and c.label.lower() == name.lower() for c in said):
            removed.add(example_id)
        if example_id in removed or (earlier is not None and not earlier[1]):
            raise CustomLabelError(
                f"example {shown!r} contradicts an earlier correction: a person said it does not "
                f"show {name!r}; leave it out, or `imagedex tag add {example_id} {name}` first"
            )
        examples[example_id] = (example_id, True, np.asarray(vector, dtype=np.float32))
    taught = _retrain(services, store, name, list(examples.values()))
    return taught


def teach_from_image(
    services: Any, store: CustomStore, name: str, reference: str
) -> dict[str, Any]:
    """One image as an example of `name` (the image page's "teach a label from this image").
    An existing label gets it as one more example and is retrained; a new one collects examples
    until it has enough, then is trained from them. `state`: `collecting` or `taught`."""
    name = clean_label(name)
    doc = find_image(services, reference)
    existing = store.label(name)
    if existing is not None:
        taught = teach(services, store, existing.name, [doc.id], files=False)
        return {"name": taught.name, "state": "taught", "new": False, **_counts(taught.positives)}
    _check_new_name(name)
    said = store.corrections([doc.id]).get(doc.id, [])
    if any(c.action == "remove" and c.label.lower() == name.lower() for c in said):
        raise CustomLabelError(
            f"this image contradicts an earlier correction: a person said it does not show "
            f"{name!r}; `imagedex tag add {doc.id} {name}` first if it does"
        )
    store.add_draft(name, doc.id, np.asarray(visual_of(doc), dtype=np.float32))
    drafts = store.drafts(name)
    name = drafts[0][0]  # spelt as first typed
    if len(drafts) < MIN_EXAMPLES:
        return {"name": name, "state": "collecting", "new": True, **_counts(len(drafts))}
    taught = _retrain(services, store, name, [(d, True, v) for _, d, v in drafts])
    store.drop_drafts(name)
    return {
        "name": taught.name,
        "state": "taught",
        "new": True,
        **_counts(taught.positives),
        "label": taught.to_dict(),
    }


def _counts(examples: int) -> dict[str, int]:
    return {"examples": examples, "needed": MIN_EXAMPLES}


def _removed_by_a_person(store: CustomStore, name: str, examples: dict[str, Any]) -> set[str]:
    """Images a person said do not show `name` (negative examples)."""
    return {doc for doc, (_, positive, _) in examples.items() if not positive}


def forget(services: Any, store: CustomStore, name: str) -> tuple[str, bool]:
    """Forget a taught label, or the examples collected for one not taught yet: (its name,
    whether it was taught, so that images may carry it)."""
    name = clean_label(name)
    found = store.label(name)
    if found is None:
        drafts = store.drafts(name)
        if drafts and store.drop_drafts(name):
            return drafts[0][0], False
        raise LabelNotFoundError(f"no taught label {name!r} (`imagedex custom list` lists them)")
    store.forget(found.name)
    store.drop_drafts(found.name)
    return found.name, True


def require(store: CustomStore, name: str) -> TaughtLabel:
    found = store.label(name)
    if found is None:
        raise LabelNotFoundError(f"no taught label {name!r} (`imagedex custom list` lists them)")
    return found


def tag(
    services: Any, store: CustomStore, reference: str, label: str, action: str
) -> dict[str, Any]:
    """Add (`add`) or remove (`remove`) `label` on one image, for good. For a taught label the
    image also becomes a positive or negative example, and the label is retrained."""
    assert action in ("add", "remove")
    label = clean_label(label)
    doc = find_image(services, reference)
    taught = store.label(label)
    was_present = any(lb.label.lower() == label.lower() for lb in doc.labels)
    if taught is not None:
        label = taught.name
        examples = {d: (d, p, v) for d, p, v in store.examples(label)}
        vector = np.asarray(visual_of(doc), dtype=np.float32)
        examples[doc.id] = (doc.id, action == "add", vector)
        if action == "remove" and sum(p for _, p, _ in examples.values()) < MIN_EXAMPLES:
            raise CustomLabelError(
                f"{doc.id} is one of the last {MIN_EXAMPLES} examples of {label!r}: teach "
                f"more examples first, or `imagedex custom forget {label}`"
            )
        _retrain(services, store, label, list(examples.values()))
    store.correct(doc.id, label, action)
    if taught is not None:
        relabel_collection(services, store, [label])
        doc = find_image(services, doc.id)
    else:
        doc = _rewrite(services, store, [doc])[0]
    return {
        "id": doc.id,
        "title": doc.title,
        "label": label,
        "action": action,
        "was_present": was_present,
        "labels": [lb.label for lb in doc.labels],
    }


def _rewrite(services: Any, store: CustomStore, docs: Sequence[ImageDocument]) -> list[Any]:
    relabel_all(docs, store.models(), store.corrections(d.id for d in docs))
    services.index.upsert(list(docs))
    return list(docs)


def relabel_collection(
    services: Any,
    store: CustomStore,
    names: Iterable[str],
    on_progress: Callable[[int, int], None] | None = None,
    dropped: Iterable[str] = (),
) -> int:
    """Apply the taught labels (and drop the `dropped` ones) on every indexed image; only the
    documents whose labels change are written. Progress is kept in the store for `names`."""
    names = list(names)
    gone = {n.lower() for n in dropped}
    total = services.index.count()
    models = store.models()
    done = changed = 0
    pending: list[ImageDocument] = []

    def flush() -> None:
        if pending:
            services.index.upsert(pending)
            pending.clear()

    try:
        for name in names:
            store.progress(name, 0, total, "applying")
        for chunk in _chunks(services.index.iter_documents(), WRITE_BATCH):
            before = [[(lb.label, round(lb.confidence, 3)) for lb in d.labels] for d in chunk]
            if gone:
                for doc in chunk:
                    doc.labels = [lb for lb in doc.labels if lb.label.lower() not in gone]
            relabel_all(chunk, models, store.corrections(d.id for d in chunk))
            for doc, earlier in zip(chunk, before, strict=True):
                if [(lb.label, round(lb.confidence, 3)) for lb in doc.labels] != earlier:
                    pending.append(doc)
                    changed += 1
            done += len(chunk)
            flush()
            for name in names:
                store.progress(name, done, max(total, done), "applying")
            if on_progress:
                on_progress(done, max(total, done))
        flush()
    except Exception:
        for name in names:
            store.progress(name, done, max(total, done), "failed")
        raise
    for name in names:
        store.progress(name, done, max(total, done), "done")
    if on_progress:
        on_progress(done, max(total, done))
    return changed


def _chunks(documents: Iterable[ImageDocument], size: int) -> Iterator[list[ImageDocument]]:
    chunk: list[ImageDocument] = []
    for doc in documents:
        chunk.append(doc)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def listing(store: CustomStore) -> list[dict[str, Any]]:
    return [label.to_dict() for label in store.labels()]


def collecting(store: CustomStore) -> list[dict[str, Any]]:
    """Labels still collecting examples one image at a time (not applied to anything yet)."""
    return [{"name": name, **_counts(count)} for name, count in store.drafted()]


def details(services: Any, store: CustomStore, name: str) -> dict[str, Any]:
    found = require(store, name)
    data = found.to_dict()
    data["positive_examples"] = [d for d, p, _ in store.examples(found.name) if p]
    data["negative_examples"] = [d for d, p, _ in store.examples(found.name) if not p]
    return data


def provenance(services: Any, store: CustomStore, reference: str) -> dict[str, Any]:
    """An image's labels each with its source: `person` (a correction added it), `custom` (a
    taught label; their names are reserved, so the name says it) or `model`; and the labels a
    person removed. Kept beside the document rather than in it, so every backend's mapping of
    labels stays as it is."""
    doc = find_image(services, reference)
    said = store.corrections([doc.id]).get(doc.id, [])
    added = {c.label.lower() for c in said if c.action == "add"}
    taught = {m.name.lower() for m in store.models()}
    labels = [
        {
            "label": lb.label,
            "confidence": round(lb.confidence, 2),
            "source": "person"
            if lb.label.lower() in added
            else "custom"
            if lb.label.lower() in taught
            else "model",
        }
        for lb in doc.labels
    ]
    removed = [c.label for c in said if c.action == "remove"]
    return {"id": doc.id, "title": doc.title, "labels": labels, "removed": removed}
