"""Offline ImageNet-1k labeller: a MobileNetV2 ONNX graph run with onnxruntime on the CPU.

The model (``recognition/models/mobilenet_v2.onnx``) and the label taxonomy
(``recognition/data/imagenet_labels.json``) ship as package data, built from PyPI packages by
``tools/build_imagenet_onnx.py`` and ``tools/build_label_taxonomy.py``; nothing is downloaded.
Labels come back shaped like Amazon Rekognition's: a name, a confidence in percent, parents and
aliases from the vocabulary people search with (``vocabulary.py``: ``Tabby Cat`` -> ``Cat``,
``Pet``, ``Mammal``, ``Animal``; WordNet internals such as ``carnivore`` are left out).

Like Rekognition, every parent of a returned class is also returned as a label of its own, whose
confidence is the probability mass of its whole subtree: the sum of the softmax over every
ImageNet class under it (capped at 100). A photo split 50/50 between two dog breeds is 50 % each
breed but ~100 % ``dog``, so ``--label dog --min-confidence 90`` finds it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, Self

import numpy as np
from PIL import Image

from imagedex.documents import Label
from imagedex.errors import RecognitionError
from imagedex.recognition.base import Analysis, Analyzer
from imagedex.recognition.runtime import (
    Lazy,
    centre_square,
    cpu_threads,
    onnx_session,
    packaged_model,
    percent,
)
from imagedex.recognition.vocabulary import Term, Vocabulary, load_vocabulary

if TYPE_CHECKING:
    from imagedex.config import Settings

__all__ = [
    "ImageNetClass",
    "ImageNetLabeller",
    "ParentTerm",
    "class_terms",
    "load_classes",
    "parent_terms",
    "softmax",
]

MODEL_NAME = "mobilenet_v2"
_PACKAGE = "imagedex.recognition"
_LABELS_FILE = "imagenet_labels.json"
_CHUNK = 32  # images per onnxruntime run: bounds memory for very large batches
FEATURE_DIM = 1280  # width of the model's pooled `features` output (the visual embedding)
#: Softmax temperature (see docs/analyzers.md, "Calibration"); 1.0 is the raw softmax.
TEMPERATURE = 1.0


@dataclass(frozen=True)
class ImageNetClass:
    """One of the 1000 classes with its Rekognition-style name, parents and aliases."""

    index: int
    wnid: str
    name: str
    parents: tuple[str, ...]
    aliases: tuple[str, ...]


def load_classes() -> list[ImageNetClass]:
    """Read the shipped label taxonomy (1000 entries, in class-index order)."""
    text = resources.files(_PACKAGE).joinpath("data", _LABELS_FILE).read_text("utf-8")
    classes = [
        ImageNetClass(
            index=int(e["index"]),
            wnid=str(e["wnid"]),
            name=str(e["name"]),
            parents=tuple(e["parents"]),
            aliases=tuple(e["aliases"]),
        )
        for e in json.loads(text)
    ]
    if [c.index for c in classes] != list(range(1000)):
        raise RecognitionError(f"{_LABELS_FILE} is not the 1000 ImageNet classes in order")
    return classes


@dataclass(frozen=True)
class ParentTerm:
    """A WordNet parent of some classes: the classes under it, its own parents and aliases."""

    name: str
    members: np.ndarray  # class indices whose name is this term or that have it as a parent
    parents: tuple[str, ...]
    aliases: tuple[str, ...]


def class_terms(classes: Sequence[ImageNetClass], vocabulary: Vocabulary) -> list[Term]:
    """Each class as a label of the vocabulary people search with (in class-index order)."""
    return [vocabulary.imagenet_class(c.name, c.parents, c.aliases) for c in classes]


def parent_terms(terms: Sequence[Term], vocabulary: Vocabulary) -> dict[str, ParentTerm]:
    """Every friendly parent label (lower-cased key) with the classes under it: those that
    have it as a parent, and a class that is that label itself (the "Mountain" class)."""
    members: dict[str, set[int]] = {}
    for index, term in enumerate(terms):
        for name in term.parents:
            members.setdefault(name.lower(), set()).add(index)
    for index, term in enumerate(terms):
        if term.name.lower() in members:
            members[term.name.lower()].add(index)
    found: dict[str, ParentTerm] = {}
    for key, indices in members.items():
        friendly = vocabulary.term(key)
        assert friendly is not None  # parents come from the vocabulary
        found[key] = ParentTerm(
            friendly.name,
            np.asarray(sorted(indices), dtype=np.intp),
            friendly.parents,
            friendly.aliases,
        )
    return found


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` (float32)."""
    scaled = np.asarray(logits, dtype=np.float32) / np.float32(temperature)
    scaled = scaled - scaled.max(axis=-1, keepdims=True)
    probs = np.exp(scaled)
    probs /= probs.sum(axis=-1, keepdims=True)
    return probs


class ImageNetLabeller(Analyzer):
    """Labels RGB images with the 1000 ImageNet classes (implements ``Recognizer``).

    ``min_confidence`` (percent) and ``max_labels`` bound what ``analyze`` returns;
    ``threads`` sets onnxruntime's intra-op threads (default: every CPU this process may use).
    The model loads on the first ``analyze`` call, once per instance.
    """

    name = "imagenet"
    #: 2: parents are labels of their own with their subtree's probability mass.
    #: 3: the model's pooled features as the image's ``visual_embedding``.
    version = "4"  # 3: visual embedding; 4: labels from the vocabulary people search with
    #: Side of the square the model sees.
    input_size: int = 224
    #: Shorter side the image is scaled to before the centre crop; decoders can draft-decode to
    #: any size at least this large without changing the result noticeably.
    resize_size: int = 256

    def __init__(
        self,
        *,
        min_confidence: float = 1.0,
        max_labels: int = 5,
        threads: int | None = None,
        temperature: float = TEMPERATURE,
    ) -> None:
        if max_labels < 1:
            raise ValueError("max_labels must be at least 1")
        if not 0.05 <= temperature <= 20.0:
            raise ValueError("temperature must be between 0.05 and 20")
        self.temperature = float(temperature)
        self.min_confidence = percent("min_confidence", min_confidence)
        self.max_labels = int(max_labels)
        self.threads = cpu_threads(threads)
        self._session: Lazy[Any] = Lazy(self._create_session)
        self._classes: list[ImageNetClass] = []
        self._terms: list[Term] = []
        self._parents: dict[str, ParentTerm] = {}
        self._mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
        self._std = np.array([0.229, 0.224, 0.225], dtype=np.float32)

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        # the classifier reports down to its own 1 %: the pipeline combines every analyzer's
        # evidence before it applies the floor (settings.min_confidence)
        return cls(
            max_labels=settings.max_labels,
            threads=settings.recognition_threads or None,
        )

    def _load(self) -> Any:
        return self._session.get()

    def _create_session(self) -> Any:
        self._classes = load_classes()
        vocabulary = load_vocabulary()
        self._terms = class_terms(self._classes, vocabulary)
        self._parents = parent_terms(self._terms, vocabulary)
        model = packaged_model(f"{MODEL_NAME}.onnx")
        session = onnx_session(model, self.threads, f"the {MODEL_NAME} ImageNet model")
        self._apply_metadata(session.get_modelmeta().custom_metadata_map)
        return session

    def _apply_metadata(self, meta: dict[str, str]) -> None:
        raw = meta.get("imagedex.preprocess")
        if not raw:
            return
        pre = json.loads(raw)
        self.input_size = int(pre["input_size"])
        self.resize_size = int(pre["resize_size"])
        self._mean = np.asarray(pre["mean"], dtype=np.float32)
        self._std = np.asarray(pre["std"], dtype=np.float32)

    # ------------------------------------------------------------------ preprocessing

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """Scale the shorter side to ``resize_size``, centre-crop ``input_size``, normalise.

        Done as one Pillow resize of the matching source box (antialiased bicubic), so large
        photos are not first scaled as a whole. Returns float32 ``[3, input_size, input_size]``.
        """
        fraction = self.input_size / self.resize_size
        return centre_square(image, self.input_size, fraction, self._mean, self._std)

    # ------------------------------------------------------------------ inference

    def logits(self, images: Sequence[Image.Image]) -> np.ndarray:
        """The model's raw class scores, float32 ``[len(images), 1000]``."""
        return self.outputs(images)[0]

    def features(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Unit-length visual embeddings (the pooled features the classifier reads), float32
        ``[len(images), 1280]``: photos that look alike are close whatever their names."""
        return self._unit_rows(self.outputs(images)[1])

    def outputs(self, images: Sequence[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
        """Raw ``logits`` ``[N, 1000]`` and pooled ``features`` ``[N, 1280]`` (float32), both
        from the same session run."""
        session = self._load()
        if not images:
            empty = np.zeros((0, len(self._classes)), dtype=np.float32)
            return empty, np.zeros((0, FEATURE_DIM), dtype=np.float32)
        batch = np.stack([self.preprocess(image) for image in images])
        logits, features = [], []
        for start in range(0, len(batch), _CHUNK):
            try:
                scores, pooled = session.run(
                    ["logits", "features"], {"pixels": batch[start : start + _CHUNK]}
                )
            except Exception as exc:
                raise RecognitionError(f"ImageNet model failed: {exc}") from exc
            logits.append(np.asarray(scores, dtype=np.float32))
            features.append(np.asarray(pooled, dtype=np.float32))
        return np.concatenate(logits), np.concatenate(features)

    @staticmethod
    def _unit_rows(matrix: np.ndarray) -> np.ndarray:
        """Each row scaled to unit length (an all-zero row stays zero), float32."""
        rows = np.asarray(matrix, dtype=np.float32)
        norms = np.linalg.norm(rows, axis=-1, keepdims=True)
        return rows / np.where(norms > 0, norms, np.float32(1.0))

    def probabilities(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Temperature-scaled softmax class probabilities, float32 ``[len(images), 1000]``."""
        return softmax(self.logits(images), self.temperature)

    def analyze_images(self, images: Sequence[Image.Image]) -> list[Analysis]:
        """One Analysis per image: up to ``max_labels`` classes, most confident first, then
        their parents (see the module doc), and the image's unit-length visual embedding."""
        logits, features = self.outputs(images)
        probs = softmax(logits, self.temperature)
        return [
            Analysis(labels=self.labels_for(row), visual_embedding=vector.tolist())
            for row, vector in zip(probs, self._unit_rows(features), strict=True)
        ]

    def labels_for(self, probs: np.ndarray) -> list[Label]:
        """Labels for one image's class probabilities (``[1000]``, summing to 1)."""
        self._load()
        return self._labels(np.asarray(probs, dtype=np.float64))

    def _labels(self, probs: np.ndarray) -> list[Label]:
        """The ``max_labels`` likeliest classes, then their parents with their subtree mass."""
        leaves = self._leaf_labels(probs)
        names = {label.label.lower() for label in leaves}
        parents: dict[str, Label] = {}
        for leaf in leaves:
            for parent in leaf.parents:
                key = parent.lower()
                if key in names or key in parents or key not in self._parents:
                    continue
                term = self._parents[key]
                mass = min(float(probs[term.members].sum()) * 100.0, 100.0)
                if mass >= self.min_confidence:
                    parents[key] = Label(term.name, mass, term.parents, term.aliases)
        # a leaf named like a parent (the "mask" class, parent of "ski mask") is that subtree
        leaves = [self._with_subtree(label, probs) for label in leaves]
        return leaves + sorted(parents.values(), key=lambda lb: (-lb.confidence, lb.label))

    def _with_subtree(self, label: Label, probs: np.ndarray) -> Label:
        term = self._parents.get(label.label.lower())
        if term is None:
            return label
        mass = min(float(probs[term.members].sum()) * 100.0, 100.0)
        return Label(label.label, max(mass, label.confidence), label.parents, label.aliases)

    def _leaf_labels(self, probs: np.ndarray) -> list[Label]:
        # Two class pairs share a display name (e.g. the two "sunglasses" classes): merge them.
        by_name: dict[str, tuple[float, Term]] = {}
        for index in np.argsort(-probs, kind="stable")[: self.max_labels * 2]:
            term = self._terms[int(index)]
            confidence = float(probs[index]) * 100.0
            if term.name in by_name:
                previous, first = by_name[term.name]
                by_name[term.name] = (previous + confidence, first)
            else:
                by_name[term.name] = (confidence, term)
        ranked = sorted(by_name.values(), key=lambda item: -item[0])
        return [
            Label(
                label=term.name,
                confidence=min(confidence, 100.0),
                parents=term.parents,
                aliases=term.aliases,
            )
            for confidence, term in ranked[: self.max_labels]
            if confidence >= self.min_confidence
        ]
