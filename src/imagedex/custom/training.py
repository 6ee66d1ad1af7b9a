"""A taught label's model: the direction its examples share, and a threshold chosen by
leave-one-out.

Nearest centroid on the visual embeddings (unit length): the score of an image is its cosine
with the mean of the positive examples. A handful of examples is all a person gives, and a
centroid needs no tuning and no iterations (a logistic model on 3 examples and 1280 features
would fit anything). Each positive is scored against the centroid of the *other* positives
(leave-one-out), so the threshold is chosen on scores the model did not see; negatives (the
person's negative examples and a sample of the collection) are scored against the whole
centroid. The threshold that maximises F1 on these scores is then moved halfway down to the
best negative below it, so that images like the examples but a little further away still count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_EXAMPLES = 3


@dataclass(frozen=True)
class Trained:
    centroid: np.ndarray
    threshold: float
    precision: float  # on the leave-one-out positives and the negatives
    recall: float
    positive_scores: tuple[float, ...]  # leave-one-out, in the order given


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def train(positives: np.ndarray, negatives: np.ndarray) -> Trained:
    """`positives` (n >= 2, d) and `negatives` (m >= 0, d), rows unit length."""
    positives = np.asarray(positives, dtype=np.float32)
    negatives = np.asarray(negatives, dtype=np.float32).reshape(-1, positives.shape[1])
    total = positives.sum(axis=0)
    loo = np.array([float(p @ _unit(total - p)) for p in positives], dtype=np.float64)
    centroid = _unit(total).astype(np.float32)
    negative_scores = (negatives @ centroid).astype(np.float64)
    best: tuple[float, float, float, float] | None = None  # (f1, threshold, precision, recall)
    for threshold in sorted(set(loo.tolist())):
        tp = int((loo >= threshold).sum())
        fp = int((negative_scores >= threshold).sum())
        precision = tp / (tp + fp)
        recall = tp / len(loo)
        f1 = 2 * precision * recall / (precision + recall)
        if best is None or f1 > best[0]:
            best = (f1, threshold, precision, recall)
    assert best is not None
    threshold = best[1]
    below = negative_scores[negative_scores < threshold]
    floor = float(below.max()) if below.size else min(float(loo.min()), threshold) - 0.05
    threshold = (threshold + max(floor, -1.0)) / 2
    tp = int((loo >= threshold).sum())
    fp = int((negative_scores >= threshold).sum())
    precision, recall = tp / max(tp + fp, 1), tp / len(loo)
    return Trained(centroid, float(threshold), precision, recall, tuple(loo.tolist()))


def confidence(score: float, threshold: float) -> float:
    """A score at or above the threshold as a confidence: 50 at the threshold, 100 at a cosine
    of 1 (what the example centroid itself would score)."""
    span = max(1.0 - threshold, 1e-6)
    return float(min(100.0, max(50.0, 50.0 + 50.0 * (score - threshold) / span)))
