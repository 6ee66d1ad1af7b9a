"""Faces for collections: found by BlazeFace (`FaceDetector`), described by dlib's 128-d descriptor
(`FaceEmbedder`), filtered by Rekognition's QualityFilter, and compared as a Similarity 0-100.

Similarity from the Euclidean descriptor distance d: ``100 / (1 + (d / D50) ** 4)`` with
``D50 = 0.53 / 0.25 ** 0.25`` (about 0.75), so d = 0.53 is exactly 80, Rekognition's default
FaceMatchThreshold. It is monotonic (closer is more similar), 100 at d = 0, 50 at d = 0.75. Through
the endpoint's own path, the face_recognition test photos and their altered copies put the same
person 0.06-0.50 apart and different people 0.74-0.89 (`bench/bench_rekognition_faces.py`, the
table in docs/rekognition.md); different people in one group photo come as close as 0.55
(docs/benchmarks.md, "Face pairs"). 0.53 lies between 0.50 and 0.55, stricter than dlib's 0.6,
which lets some of those group-photo pairs through.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image

from imagedex.config import Settings
from imagedex.recognition.face_detection import DetectedFace, FaceDetector
from imagedex.recognition.face_embedding import FaceEmbedder

#: The distance that maps to Similarity 80 (the default FaceMatchThreshold).
THRESHOLD_DISTANCE = 0.53
_D50 = THRESHOLD_DISTANCE / 0.25**0.25
_POWER = 4.0
#: What the detector reports at all (QualityFilter NONE); the levels below filter further. On the
#: face_recognition photos BlazeFace also scores shirts and backgrounds at 50-56 %, some of them
#: larger than the real face, which "the largest face" would then pick; nothing real scored
#: under 83 there, nor any false face over 57.
DETECTOR_FLOOR = 70.0
#: QualityFilter: the confidence a face needs, and the smallest face side in pixels of the
#: picture it is described from. AUTO is the faces analyzer's floor (80), measured to find no
#: faces on 70 photos without people (docs/analyzers.md); 32 px is about a fifth of the 150 px
#: chip the descriptor sees, below which it is mostly guessing.
QUALITY = {
    "NONE": (DETECTOR_FLOOR, 0),
    "LOW": (DETECTOR_FLOOR, 24),
    "AUTO": (80.0, 32),
    "MEDIUM": (80.0, 32),
    "HIGH": (90.0, 48),
}
#: Changes whenever a stored descriptor could no longer be compared with a new one (detector,
#: alignment, descriptor model or similarity mapping). Digits and dots, as Rekognition's
#: IndexFacesModelVersion must be.
FACE_MODEL_VERSION = "1.0"


def similarity(distance: np.ndarray | float) -> np.ndarray:
    """Similarity 0-100 of descriptors `distance` apart (see the module doc)."""
    d = np.asarray(distance, dtype=np.float64)
    return 100.0 / (1.0 + (d / _D50) ** _POWER)


def distance_for(similarity_threshold: float) -> float:
    """The largest distance whose similarity is at least `similarity_threshold` (0-100)."""
    if similarity_threshold <= 0:
        return float("inf")
    if similarity_threshold >= 100:
        return 0.0
    return float(_D50 * (100.0 / similarity_threshold - 1.0) ** (1.0 / _POWER))


@dataclass(frozen=True)
class Quality:
    """Why a face fails a QualityFilter level, or None when it passes."""

    min_confidence: float
    min_side_px: int

    @classmethod
    def of(cls, level: str) -> Quality:
        confidence, side = QUALITY[level]
        return cls(confidence, side)

    def reasons(self, face: DetectedFace, picture: Image.Image) -> list[str]:
        found = []
        if face.confidence < self.min_confidence:
            found.append("LOW_CONFIDENCE")
        side = min(face.width * picture.width, face.height * picture.height)
        if side < self.min_side_px:
            found.append("SMALL_BOUNDING_BOX")
        return found


class FaceEngine:
    """The detector and the descriptor, built on first use (thread-safe)."""

    def __init__(self, settings: Settings) -> None:
        self.threads = settings.recognition_threads or None
        self._detector: FaceDetector | None = None
        self._embedder: FaceEmbedder | None = None
        self._lock = threading.Lock()

    def _models(self) -> tuple[FaceDetector, FaceEmbedder]:
        with self._lock:
            if self._detector is None or self._embedder is None:
                self._detector = FaceDetector(min_confidence=DETECTOR_FLOOR, threads=self.threads)
                self._embedder = FaceEmbedder(threads=self.threads)
            return self._detector, self._embedder

    def detect(self, picture: Image.Image) -> list[DetectedFace]:
        """Faces, largest first."""
        faces = self._models()[0].detect(picture)
        return sorted(faces, key=lambda f: -f.width * f.height)

    def describe(self, picture: Image.Image, faces: list[DetectedFace]) -> np.ndarray:
        """float32 [len(faces), 128]."""
        return self._models()[1].embed(picture, faces)
