"""The ``faces`` analyzer (BlazeFace, :mod:`imagedex.recognition.face_detection`), and the older
Haar detector the ``people`` analyzer still uses as evidence of people.

``FaceAnalyzer`` (version 3) replaced the Haar cascades after ``bench/bench_faces.py`` measured
both on the packaged photos (``docs/benchmarks.md``, "Faces"): BlazeFace finds 31 of the 32
counted faces (every face of the group photos and the faces cut by the frame; the cascade 20),
no false faces on 70 photos without people, gives six keypoints per face for alignment, and costs
less (median 24 ms per image against 41 ms on 2 cores).

Haar: OpenCV's frontal-face cascade (``haarcascade_frontalface_default.xml``, Intel License
Agreement / BSD-style, shipped inside ``opencv-python-headless<5``) on a grayscale copy whose
longer side is at most ``max_side`` (480) px, so faces under about 5 % of the longer side are
missed. A cheap gate (:func:`may_contain_faces`, well under a millisecond) looks at a 96 px
thumbnail and skips colour images with no skin-toned pixels at all; near-grayscale images always
pass. Confidence: ``detectMultiScale3``'s last-stage weight through ``100 / (1 + exp(-2 * (w -
2)))`` (weight 2 is 50 %, 3 is 88 %; LFW faces score 1.1-11.5, false faces on flowers and a puppy
0.1-1.1). Eye check: each face must show two eyes side by side (OpenCV's eye cascades on the upper
60 % of the box), which removes the cascade's faces on animals and flowers at some cost in recall
on blurry faces.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from imagedex.documents import Label
from imagedex.errors import RecognitionError
from imagedex.recognition.base import Analysis, Analyzer, bbox_dict
from imagedex.recognition.face_detection import DetectedFace, FaceDetector
from imagedex.recognition.runtime import Lazy, opencv, percent

__all__ = [
    "DetectedFace",
    "FaceAnalyzer",
    "FaceBox",
    "HaarFaceDetector",
    "face_confidence",
    "may_contain_faces",
]

_CASCADE = "haarcascade_frontalface_default.xml"
_EYE_CASCADES = ("haarcascade_eye.xml", "haarcascade_eye_tree_eyeglasses.xml")
_EYE_REGION = (120, 72)  # the upper 60 % of a face box, scaled to this size for the eye check
_EYE_SIZES = ((14, 14), (60, 60))  # smallest and largest eye looked for in that region
_EYE_APART = 12  # px between two eyes' centres in that region (a tenth of the face's width)
_GATE_SIDE = 96
_MIN_FACE = 24  # the cascade's window: the smallest face it can see, in detection pixels


def face_confidence(level_weight: float) -> float:
    """Map a Haar cascade's final-stage weight to a 0-100 confidence (see the module doc)."""
    return 100.0 / (1.0 + math.exp(-2.0 * (float(level_weight) - 2.0)))


def may_contain_faces(image: Image.Image, *, min_skin_pixels: int = 8) -> bool:
    """Cheap gate: False when a 96 px thumbnail shows no skin-toned pixels at all.

    Skin is a conservative YCbCr box (Cr 140-170, Cb 95-125, Y > 60). ``min_skin_pixels`` of
    them (roughly the smallest face the detector can find, 5 % of the longer side) let it
    pass. Near-grayscale images (mean HSV saturation of the non-black pixels under 8/255) always
    pass, as skin colour cannot be judged there; an all-black image never does.
    """
    thumb = image.convert("RGB")
    thumb.thumbnail((_GATE_SIDE, _GATE_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    hsv = np.asarray(thumb.convert("HSV"), dtype=np.int16)
    lit = hsv[..., 2] > 24
    if not lit.any():
        return False
    if float(hsv[..., 1][lit].mean()) < 8.0:
        return True
    ycc = np.asarray(thumb.convert("YCbCr"), dtype=np.int16)
    y, cb, cr = ycc[..., 0], ycc[..., 1], ycc[..., 2]
    skin = (cr >= 140) & (cr <= 170) & (cb >= 95) & (cb <= 125) & (y > 60)
    return int(np.count_nonzero(skin)) >= min_skin_pixels


@dataclass(frozen=True)
class FaceBox:
    """One detected face: box as fractions (0-1) of the image, confidence 0-100."""

    left: float
    top: float
    width: float
    height: float
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "bbox": bbox_dict(self.left, self.top, self.width, self.height),
            "confidence": round(self.confidence, 3),
        }


class HaarFaceDetector:
    """Loads the frontal-face cascade once and finds faces in PIL images (thread-safe)."""

    def __init__(
        self,
        *,
        max_side: int = 480,
        scale_factor: float = 1.15,
        min_neighbors: int = 4,
        min_confidence: float = 50.0,
        require_eyes: bool = True,
    ) -> None:
        if max_side < _MIN_FACE:
            raise ValueError(f"max_side must be at least {_MIN_FACE}")
        if scale_factor <= 1.0:
            raise ValueError("scale_factor must be greater than 1")
        self.max_side = int(max_side)
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.min_confidence = percent("min_confidence", min_confidence)
        self.require_eyes = bool(require_eyes)
        self._lock = threading.Lock()  # CascadeClassifier is not documented as thread-safe
        self._cascades: Lazy[list[Any]] = Lazy(self._load_cascades)

    @staticmethod
    def _load_cascades() -> list[Any]:
        """The face cascade first, then the eye cascades."""
        cv2 = opencv("face detection")
        cascades = []
        for name in (_CASCADE, *_EYE_CASCADES):
            cascade = cv2.CascadeClassifier(cv2.data.haarcascades + name)
            if cascade.empty():
                raise RecognitionError(f"OpenCV ships no {name} (OpenCV 5 dropped them)")
            cascades.append(cascade)
        return cascades

    def has_eyes(self, gray: Image.Image, box: tuple[float, float, float, float]) -> bool:
        """Whether the upper part of a face box (fractions of ``gray``) shows two eyes: two
        detections, from either eye cascade, side by side (centres ``_EYE_APART`` px apart)."""
        left, top, width, height = box
        w, h = gray.size
        region = (left * w, top * h, (left + width) * w, (top + 0.6 * height) * h)
        crop = np.asarray(gray.resize(_EYE_REGION, Image.Resampling.BILINEAR, box=region))
        centres: list[float] = []
        for cascade in self._cascades.get()[1:]:
            eyes = cascade.detectMultiScale(
                crop, scaleFactor=1.1, minNeighbors=2, minSize=_EYE_SIZES[0], maxSize=_EYE_SIZES[1]
            )
            centres += [float(x + ew / 2) for x, _y, ew, _eh in np.asarray(eyes).reshape(-1, 4)]
        return bool(centres) and max(centres) - min(centres) >= _EYE_APART

    def gray(self, image: Image.Image) -> np.ndarray:
        """Grayscale uint8 copy whose longer side is at most ``max_side``."""
        gray = image.convert("L") if image.mode != "L" else image.copy()
        if max(gray.size) > self.max_side:
            gray.thumbnail((self.max_side, self.max_side), Image.Resampling.BILINEAR, 2.0)
        return np.asarray(gray, dtype=np.uint8)

    def detect(self, image: Image.Image) -> list[FaceBox]:
        """Faces at or above ``min_confidence``, most confident first."""
        if image.width < 1 or image.height < 1:
            raise RecognitionError("cannot detect faces in an empty (0-pixel) image")
        full = image.convert("L")
        pixels = self.gray(full)
        height, width = pixels.shape
        if min(height, width) < _MIN_FACE:
            return []
        cascade = self._cascades.get()[0]
        with self._lock:
            try:
                rects, _levels, weights = cascade.detectMultiScale3(
                    pixels,
                    scaleFactor=self.scale_factor,
                    minNeighbors=self.min_neighbors,
                    minSize=(_MIN_FACE, _MIN_FACE),
                    outputRejectLevels=True,
                )
            except Exception as exc:  # cv2.error
                raise RecognitionError(f"Haar face detection failed: {exc}") from exc
            faces = []
            for (x, y, w, h), weight in zip(
                np.asarray(rects).reshape(-1, 4), np.ravel(weights), strict=True
            ):
                confidence = face_confidence(float(weight))
                box = (float(x) / width, float(y) / height, float(w) / width, float(h) / height)
                if confidence < self.min_confidence:
                    continue
                if self.require_eyes and not self.has_eyes(full, box):
                    continue
                faces.append(FaceBox(*box, min(confidence, 100.0)))
        return sorted(faces, key=lambda f: -f.confidence)


class FaceAnalyzer(Analyzer):
    """Finds faces and their keypoints with BlazeFace (implements ``Recognizer``).

    Each face is ``{"bbox": {"left", "top", "width", "height"}, "confidence", "landmarks":
    {"left_eye": {"x", "y"}, "right_eye", "nose", "mouth", "left_ear", "right_ear"}}`` (fractions
    0-1; see :mod:`imagedex.recognition.face_detection`); when there are faces, one ``Face`` label
    (parent ``Person``, confidence of the best face, every face's box as an instance) is added.
    ``min_confidence``, ``tiles`` and ``max_faces`` tune the detector; ``gate`` skips images the
    skin-tone check (:func:`may_contain_faces`) rules out, off by default (it is cheaper than the
    model but loses faces under coloured light).
    """

    name = "faces"
    version = "3"  # 3: BlazeFace with keypoints (2: Haar, faces must show two eyes)

    def __init__(
        self,
        *,
        min_confidence: float = 80.0,
        tiles: int = 3,
        max_faces: int = 100,
        gate: bool = False,
        threads: int | None = None,
    ) -> None:
        self.detector = FaceDetector(
            min_confidence=min_confidence, tiles=tiles, max_faces=max_faces, threads=threads
        )
        self.gate = gate

    def faces(self, image: Image.Image) -> list[DetectedFace]:
        """Faces in one image, skipping the detector when the gate is on and says none."""
        return self._faces([image])[0]

    def _faces(self, images: Sequence[Image.Image]) -> list[list[DetectedFace]]:
        for image in images:
            if image.width < 1 or image.height < 1:
                raise RecognitionError("cannot detect faces in an empty (0-pixel) image")
        wanted = [i for i, image in enumerate(images) if not self.gate or may_contain_faces(image)]
        found = self.detector.detect_many([images[i] for i in wanted]) if wanted else []
        results: list[list[DetectedFace]] = [[] for _ in images]
        for i, faces in zip(wanted, found, strict=True):
            results[i] = faces
        return results

    def analyze_images(self, images: Sequence[Image.Image]) -> list[Analysis]:
        """One Analysis per image; every image's tiles go through the model in batches."""
        results = []
        for faces in self._faces(images):
            labels = []
            if faces:
                instances = tuple(
                    {key: face.to_dict()[key] for key in ("bbox", "confidence")} for face in faces
                )
                labels.append(
                    Label("Face", faces[0].confidence, parents=("Person",), instances=instances)
                )
            results.append(Analysis(faces=[f.to_dict() for f in faces], labels=labels))
        return results
