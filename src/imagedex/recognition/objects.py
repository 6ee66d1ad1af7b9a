"""Objects with boxes: the COCO-80 detector (`detection.py`) as labels of the vocabulary.

Each detected class becomes one label in the vocabulary people search with ("person" ->
"Person", "sports ball" -> "Ball" with parents "Sports Equipment"), whose `instances` hold every
box of that class as `{bbox: {left, top, width, height} in 0-1, confidence}`, the shape of
Amazon Rekognition's `Instances[].BoundingBox`; the label's confidence is its best box's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Self

from PIL import Image

from imagedex.documents import Label
from imagedex.recognition.base import Analysis, Analyzer, bbox_dict
from imagedex.recognition.detection import Detection, NanoDet
from imagedex.recognition.vocabulary import load_vocabulary

if TYPE_CHECKING:
    from imagedex.config import Settings


def instance(detection: Detection) -> dict[str, Any]:
    left, top, width, height = detection.box
    return {
        "bbox": bbox_dict(left, top, width, height),
        "confidence": round(detection.confidence, 3),
    }


def labels_from(detections: Sequence[Detection]) -> list[Label]:
    """One label per detected class, most confident first, boxes most confident first."""
    vocabulary = load_vocabulary()
    by_class: dict[str, list[Detection]] = {}
    for detection in sorted(detections, key=lambda d: -d.confidence):
        by_class.setdefault(detection.label, []).append(detection)
    labels = []
    for coco_name, found in by_class.items():
        term = vocabulary.coco_class(coco_name)
        labels.append(
            Label(
                term.name,
                found[0].confidence,
                term.parents,
                term.aliases,
                tuple(instance(d) for d in found),
            )
        )
    return sorted(labels, key=lambda lb: -lb.confidence)


class ObjectDetector(Analyzer):
    """Finds the 80 COCO object classes with boxes (implements ``Recognizer``).

    ``threads``: onnxruntime intra-op threads (default: every CPU this process may use);
    ``min_confidence``: the score (percent) a detection needs.
    The model loads on first use, once per instance.
    """

    name = "objects"
    version = "3"  # 2: detections need 60 %; 3: int8 model on the photo's own shape

    def __init__(self, *, threads: int | None = None, min_confidence: float = 60.0) -> None:
        # NanoDet's 50-60 % detections were wrong more often than right on the labelled
        # photos (a giraffe on a dalmatian, a person in a goldfish bowl); at 60 no subject
        # was lost (bench/bench_labels.py, docs/analyzers.md)
        self.detector = NanoDet(threads=threads, min_confidence=min_confidence)

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(threads=settings.recognition_threads or None)

    def analyze_images(self, images: Sequence[Image.Image]) -> list[Analysis]:
        return [Analysis(labels=labels_from(found)) for found in self.detector.detect_batch(images)]
