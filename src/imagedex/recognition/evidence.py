"""One label list per image from every analyzer's labels: combined evidence, then the floor.

Two analyzers may name the same thing (the classifier's "Dog" subtree and the detector's "Dog"
box). Their confidences are combined as independent evidence (noisy-OR: 1 - (1-a)(1-b)), so a
second witness raises the confidence and never averages it down; their instances, parents and
aliases are merged. Labels below the floor are then dropped, as are instances below it, so
search, facets, dashboards, reports and alerts only ever see labels worth showing.
"""

from __future__ import annotations

from collections.abc import Sequence

from imagedex.documents import Label, leaf_label_names


def combine(labels: Sequence[Label]) -> list[Label]:
    """One label per name (case-insensitive, first spelling kept), in first-seen order."""
    merged: dict[str, Label] = {}
    for label in labels:
        key = label.label.lower()
        seen = merged.get(key)
        if seen is None:
            merged[key] = label
            continue
        agreement = 1.0 - (1.0 - seen.confidence / 100.0) * (1.0 - label.confidence / 100.0)
        merged[key] = Label(
            seen.label,
            min(100.0, agreement * 100.0),
            tuple(dict.fromkeys([*seen.parents, *label.parents])),
            tuple(dict.fromkeys([*seen.aliases, *label.aliases])),
            (*seen.instances, *label.instances),
        )
    return list(merged.values())


def above_floor(labels: Sequence[Label], floor: float) -> list[Label]:
    """Labels at or above `floor` percent, each with only its instances at or above it;
    the most specific first (leaves, then broader labels), each group by confidence."""
    kept = [
        Label(
            lb.label,
            lb.confidence,
            lb.parents,
            lb.aliases,
            tuple(i for i in lb.instances if float(i.get("confidence", 100.0)) >= floor),
        )
        for lb in labels
        if lb.confidence >= floor
    ]
    leaves = leaf_label_names(kept)
    return sorted(kept, key=lambda lb: (lb.label.lower() not in leaves, -lb.confidence))


def finish(labels: Sequence[Label], floor: float) -> list[Label]:
    """Every analyzer's labels for one image, as indexed."""
    return above_floor(combine(labels), floor)
