"""Offline face detection with OpenCV's frontal-face Haar cascade.

The cascade (``haarcascade_frontalface_default.xml``, Intel License Agreement / BSD-style) ships
inside ``opencv-python-headless<5`` as ``cv2.data.haarcascades``; nothing is downloaded.

Detection runs on a grayscale copy scaled so its longer side is at most ``max_side`` (480) px,
so faces smaller than about 24/480 = 5 % of the longer side are missed. Before that, a cheap gate
(:func:`may_contain_faces`, well under a millisecond) looks at a 96 px thumbnail and skips
colour images with no skin-toned pixels at all (snow, sea, foliage, night skies); near-grayscale
images always pass, since skin colour cannot be judged there.

Confidence: ``detectMultiScale3`` reports, per face, the sum of the cascade's last stage
(``levelWeights``). On 100 LFW faces (``skimage.data.lfw_subset``) it is 1.1-11.5, mostly above
3; on the false detections seen in the packaged test photos (flowers, a puppy, a flag) it is
0.1-1.1. It is mapped through a logistic curve, ``100 / (1 + exp(-2 * (w - 2)))``: weight 2
is 50 %, 3 is 88 %, 4.7 is 99.5 %, 1.1 is 14 %. Faces under ``min_confidence`` (default 50) are
dropped.

Eye check: a cascade that fires on a dog's muzzle, a flower's centre or a fish's head scores as
high as a real face (81-99 % on the packaged puppy, dahlia and betta photos), so each face must
also show two eyes side by side: OpenCV's ``haarcascade_eye.xml`` and, for glasses,
``haarcascade_eye_tree_eyeglasses.xml`` on the upper 60 % of the face box, cut from the input
image and scaled to 120x72 px (about a millisecond per face). On the packaged photos scanned at
256-800 px this removes every animal/flower face (the one dahlia "face" shows a single "eye")
and keeps the astronaut and Grace Hopper at every size. It costs recall on blurry faces: of the
81 LFW faces the cascade finds (``skimage.data.lfw_subset``, 25 px crops scaled to 100 px) it
keeps 70 (86 %), and 8 of the 11 in the tests' LFW "group photo". ``require_eyes=False`` turns
it off.
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
from imagedex.recognition.base import Analysis, Analyzer
from imagedex.recognition.runtime import Lazy, opencv, percent

__all__ = ["FaceAnalyzer", "FaceBox", "HaarFaceDetector", "face_confidence", "may_contain_faces"]

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
            "bbox": {
                "left": round(self.left, 5),
                "top": round(self.top, 5),
                "width": round(self.width, 5),
                "height": round(self.height, 5),
            },
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
    """Finds frontal faces (implements ``Recognizer``).

    Each face is ``{"bbox": {"left", "top", "width", "height"} (fractions 0-1), "confidence"}``;
    when there are faces, one ``Face`` label (parent ``Person``, confidence of the best face,
    every face as an instance) is added. ``gate`` turns the skin-tone pre-check on or off,
    ``require_eyes`` the eye check (see the module doc);
    ``max_side``, ``scale_factor``, ``min_neighbors`` tune the detector (see the module doc).
    """

    name = "faces"
    version = "2"  # 2: faces must show two eyes

    def __init__(
        self,
        *,
        min_confidence: float = 50.0,
        max_side: int = 480,
        scale_factor: float = 1.15,
        min_neighbors: int = 4,
        gate: bool = True,
        require_eyes: bool = True,
    ) -> None:
        self.detector = HaarFaceDetector(
            max_side=max_side,
            scale_factor=scale_factor,
            min_neighbors=min_neighbors,
            min_confidence=min_confidence,
            require_eyes=require_eyes,
        )
        self.gate = gate

    def faces(self, image: Image.Image) -> list[FaceBox]:
        """Faces in one image, skipping the detector when the gate says there can be none."""
        if image.width < 1 or image.height < 1:
            raise RecognitionError("cannot detect faces in an empty (0-pixel) image")
        if self.gate and not may_contain_faces(image):
            return []
        return self.detector.detect(image)

    def analyze_images(self, images: Sequence[Image.Image]) -> list[Analysis]:
        """One Analysis per image (Haar cascades have no batch mode: one image at a time)."""
        results = []
        for image in images:
            faces = self.faces(image)
            labels = []
            if faces:
                instances = tuple(face.to_dict() for face in faces)
                labels.append(
                    Label("Face", faces[0].confidence, parents=("Person",), instances=instances)
                )
            results.append(Analysis(faces=[f.to_dict() for f in faces], labels=labels))
        return results
