"""Faces with keypoints: MediaPipe's BlazeFace (back-camera model) on onnxruntime.

The model (``models/blazeface_back.onnx``, 0.3 MB, built by ``tools/build_face_detector_onnx.py``)
looks at a 256x256 letterboxed copy of the image and scores 896 anchors; each gives a face box and
six keypoints. A face smaller than about 16 px in that copy (6 % of the image's longer side) is
missed, so larger images are also cut into overlapping square tiles (``tiles``), all run in one
batch; a detection that touches a tile's inner border is dropped (the neighbouring tile or the
whole-image pass sees that face whole), and overlapping boxes are merged by non-maximum
suppression. The choice of model and the defaults were measured in ``bench/bench_faces.py``
(``docs/benchmarks.md``).

Landmarks are named from the viewer's side, as Amazon Rekognition and dlib/face_recognition name
them: ``left_eye`` is the eye on the image's left (the person's right eye). For a frontal face
``left_eye.x < right_eye.x``; a face upside down or seen in a mirror may swap them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from imagedex.errors import RecognitionError
from imagedex.recognition.base import bbox_dict
from imagedex.recognition.runtime import Lazy, cpu_threads, onnx_session, packaged_model, percent

__all__ = ["MODEL_FILE", "DetectedFace", "FaceDetector"]

MODEL_FILE = "blazeface_back.onnx"
# The model's keypoints (MediaPipe's order, named for the person) by the names used here (the
# viewer's side): the person's right eye appears on the image's left.
_KEYPOINT_NAMES = {
    "right_eye": "left_eye",
    "left_eye": "right_eye",
    "nose": "nose",
    "mouth": "mouth",
    "right_ear": "left_ear",
    "left_ear": "right_ear",
}
_BATCH = 16  # model inputs per onnxruntime run


@dataclass(frozen=True)
class DetectedFace:
    """One face: box and landmarks as fractions (0-1) of the image, confidence 0-100.

    ``landmarks`` maps ``left_eye``, ``right_eye``, ``nose``, ``mouth``, ``left_ear`` and
    ``right_ear`` (the viewer's left and right) to ``(x, y)``. Points of a face cut by the frame
    may lie slightly outside 0-1; the box is clipped to the image.
    """

    left: float
    top: float
    width: float
    height: float
    confidence: float
    landmarks: dict[str, tuple[float, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The shape documents and the web page use: ``bbox`` (fractions), ``confidence``,
        ``landmarks`` (name -> ``{"x", "y"}``)."""
        return {
            "bbox": bbox_dict(self.left, self.top, self.width, self.height),
            "confidence": round(self.confidence, 3),
            "landmarks": {
                name: {"x": round(x, 5), "y": round(y, 5)}
                for name, (x, y) in self.landmarks.items()
            },
        }


@dataclass(frozen=True)
class _Window:
    """A square region of the image fed to the model: its left, top and side in image pixels,
    and which of its borders are inside the image (a face touching those is cut)."""

    left: float
    top: float
    side: float
    inner: tuple[bool, bool, bool, bool] = (False, False, False, False)  # left, top, right, bottom


class FaceDetector:
    """Finds faces and their keypoints in PIL images (thread-safe; the model loads on first use).

    ``min_confidence`` (percent) is what a face needs; ``iou_threshold`` the overlap above which
    the weaker of two boxes is dropped; ``max_faces`` caps the faces returned per image (most
    confident first); ``tiles`` is the largest number of tiles along the image's longer side
    (0 looks at the whole image only); ``model`` is another build of the model (bytes or path),
    by default the packaged one.
    """

    def __init__(
        self,
        *,
        min_confidence: float = 80.0,
        iou_threshold: float = 0.3,
        max_faces: int = 100,
        tiles: int = 3,
        threads: int | None = None,
        model: bytes | Path | None = None,
    ) -> None:
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError("iou_threshold must be above 0 and at most 1")
        if max_faces < 1:
            raise ValueError("max_faces must be at least 1")
        if not 0 <= tiles <= 8:
            raise ValueError("tiles must be between 0 and 8")
        self.min_confidence = percent("min_confidence", min_confidence)
        self.iou_threshold = float(iou_threshold)
        self.max_faces = int(max_faces)
        self.tiles = int(tiles)
        self.threads = cpu_threads(threads)
        self._model = model
        self.input_size = 256
        self._keypoints: list[str] = []
        self._anchors = np.zeros((0, 2), dtype=np.float32)
        self._session: Lazy[Any] = Lazy(self._create_session)

    # ------------------------------------------------------------------ loading

    def _create_session(self) -> Any:
        model = packaged_model(MODEL_FILE) if self._model is None else self._model
        session = onnx_session(model, self.threads, "the BlazeFace face model")
        meta = session.get_modelmeta().custom_metadata_map
        try:
            pre = json.loads(meta["imagedex.preprocess"])
            layers = json.loads(meta["imagedex.anchors"])
            keypoints = [str(name) for name in json.loads(meta["imagedex.keypoints"])]
            size = int(pre["input_size"])
            anchors = _anchors(size, [(int(a["stride"]), int(a["per_cell"])) for a in layers])
        except (KeyError, TypeError, ValueError) as exc:
            raise RecognitionError(f"the face model's metadata is incomplete: {exc}") from exc
        if pre.get("resize") != "letterbox" or pre.get("color_order") != "RGB":
            raise RecognitionError("the face model wants preprocessing this code lacks")
        self.input_size, self._anchors = size, anchors
        self._keypoints = [_KEYPOINT_NAMES.get(name, name) for name in keypoints]
        return session

    # ------------------------------------------------------------------ detection

    def detect(self, image: Image.Image) -> list[DetectedFace]:
        """Faces at or above ``min_confidence`` in one image, most confident first."""
        return self.detect_many([image])[0]

    def detect_many(self, images: Sequence[Image.Image]) -> list[list[DetectedFace]]:
        """Faces in each image; every tile of every image goes through the model in batches."""
        session = self._session.get()
        inputs: list[np.ndarray] = []
        owners: list[tuple[int, _Window, float]] = []  # image index, window, pixel scale
        for index, image in enumerate(images):
            if image.width < 1 or image.height < 1:
                raise RecognitionError("cannot detect faces in an empty (0-pixel) image")
            rgb = image if image.mode == "RGB" else image.convert("RGB")
            for window in self.windows(rgb.width, rgb.height):
                pixels, scale = self._letterbox(rgb, window)
                inputs.append(pixels)
                owners.append((index, window, scale))
        found: list[list[tuple[float, np.ndarray]]] = [[] for _ in images]
        for start in range(0, len(inputs), _BATCH):
            batch = np.stack(inputs[start : start + _BATCH])
            try:
                logits, regressors = session.run(["scores", "regressors"], {"pixels": batch})
            except Exception as exc:  # onnxruntime's own exception types
                raise RecognitionError(f"the face model failed: {exc}") from exc
            for row, (index, window, scale) in enumerate(owners[start : start + len(batch)]):
                size = images[index].size
                found[index] += self._decode(logits[row], regressors[row], window, scale, size)
        return [self._finish(faces, image.size) for faces, image in zip(found, images, strict=True)]

    def windows(self, width: int, height: int) -> list[_Window]:
        """The whole image, then overlapping square tiles when the image is large enough that
        a face of 16 model pixels would be under ~40 image pixels (tiles of at least 320 px)."""
        longer, shorter = max(width, height), min(width, height)
        whole = _Window(0.0, 0.0, float(longer))
        if self.tiles == 0 or longer < 2.5 * self.input_size:
            return [whole]
        side = max(min(shorter, longer / max(self.tiles - 0.5, 1.0)), 1.25 * self.input_size)
        side = min(side, float(shorter))
        across = _positions(width, side, self.tiles)
        down = _positions(height, side, self.tiles)
        if len(across) * len(down) <= 1:
            return [whole]
        tiles = [whole]
        for top in down:
            for left in across:
                inner = (left > 0, top > 0, left + side < width - 0.5, top + side < height - 0.5)
                tiles.append(_Window(left, top, side, inner))
        return tiles

    def _letterbox(self, image: Image.Image, window: _Window) -> tuple[np.ndarray, float]:
        """The window scaled so its side is the model's input, placed top-left on black (-1),
        as float32 ``[3, S, S]`` in -1..1; and the scale (model pixels per image pixel)."""
        size = self.input_size
        scale = size / window.side
        right = min(window.left + window.side, image.width)
        bottom = min(window.top + window.side, image.height)
        box = (window.left, window.top, right, bottom)
        out_w = max(1, min(size, round((right - window.left) * scale)))
        out_h = max(1, min(size, round((bottom - window.top) * scale)))
        part = image.resize((out_w, out_h), Image.Resampling.BILINEAR, box=box, reducing_gap=2.0)
        pixels = np.full((size, size, 3), -1.0, dtype=np.float32)
        pixels[:out_h, :out_w] = np.asarray(part, dtype=np.float32) / np.float32(127.5) - 1.0
        return pixels.transpose(2, 0, 1), scale

    def _decode(
        self,
        logits: np.ndarray,
        regressors: np.ndarray,
        window: _Window,
        scale: float,
        image_size: tuple[int, int],
    ) -> list[tuple[float, np.ndarray]]:
        """(confidence, [x1, y1, x2, y2, kx1, ky1, ...] in image pixels) per kept anchor."""
        threshold = math.log(self.min_confidence / max(100.0 - self.min_confidence, 1e-6))
        keep = (
            np.nonzero(logits > threshold)[0] if self.min_confidence > 0 else np.arange(len(logits))
        )
        results = []
        width, height = image_size
        margin = 2.0 / scale  # 2 model pixels
        for i in keep:
            reg = regressors[i].astype(np.float64)
            cx, cy = reg[0] + self._anchors[i, 0], reg[1] + self._anchors[i, 1]
            w, h = reg[2], reg[3]
            if w <= 0 or h <= 0:
                continue
            points = np.empty(4 + 2 * len(self._keypoints))
            points[:4] = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
            points[4::2] = reg[4 : 4 + 2 * len(self._keypoints) : 2] + self._anchors[i, 0]
            points[5::2] = reg[5 : 5 + 2 * len(self._keypoints) : 2] + self._anchors[i, 1]
            points[0::2] = points[0::2] / scale + window.left
            points[1::2] = points[1::2] / scale + window.top
            x1, y1, x2, y2 = points[:4]
            left, top = window.left, window.top
            right = min(left + window.side, width)
            bottom = min(top + window.side, height)
            cut = (
                (window.inner[0] and x1 < left + margin)
                or (window.inner[1] and y1 < top + margin)
                or (window.inner[2] and x2 > right - margin)
                or (window.inner[3] and y2 > bottom - margin)
            )
            if cut:
                continue
            confidence = 100.0 / (1.0 + math.exp(-float(np.clip(logits[i], -80, 80))))
            results.append((confidence, points))
        return results

    def _finish(
        self, candidates: list[tuple[float, np.ndarray]], image_size: tuple[int, int]
    ) -> list[DetectedFace]:
        """Non-maximum suppression, then boxes clipped and everything as fractions."""
        width, height = image_size
        candidates.sort(key=lambda c: -c[0])
        kept: list[tuple[float, np.ndarray]] = []
        for confidence, points in candidates:
            if any(_overlaps(points[:4], other[:4], self.iou_threshold) for _, other in kept):
                continue
            kept.append((confidence, points))
            if len(kept) == self.max_faces:
                break
        faces = []
        for confidence, points in kept:
            x1, x2 = (min(max(v / width, 0.0), 1.0) for v in (points[0], points[2]))
            y1, y2 = (min(max(v / height, 0.0), 1.0) for v in (points[1], points[3]))
            if x2 <= x1 or y2 <= y1:
                continue
            landmarks = {
                name: (float(points[4 + 2 * k] / width), float(points[5 + 2 * k] / height))
                for k, name in enumerate(self._keypoints)
            }
            faces.append(
                DetectedFace(
                    float(x1),
                    float(y1),
                    float(x2 - x1),
                    float(y2 - y1),
                    min(confidence, 100.0),
                    landmarks,
                )
            )
        return faces


def _anchors(size: int, layers: list[tuple[int, int]]) -> np.ndarray:
    """Anchor centres in model pixels: per layer, cells row by row, ``per_cell`` each."""
    centres = []
    for stride, per_cell in layers:
        cells = math.ceil(size / stride)
        for row in range(cells):
            for column in range(cells):
                centres += [((column + 0.5) * stride, (row + 0.5) * stride)] * per_cell
    return np.asarray(centres, dtype=np.float64)


def _positions(length: int, side: float, most: int) -> list[float]:
    """Evenly spread starts of up to ``most`` windows of ``side`` covering ``length`` with
    overlap (at least a quarter of a window); one window when one covers it."""
    if side >= length - 0.5:
        return [0.0]
    count = min(most, max(2, math.ceil((length - side) / (0.75 * side)) + 1))
    step = (length - side) / (count - 1)
    return [step * k for k in range(count)]


def _overlaps(a: np.ndarray, b: np.ndarray, iou_threshold: float) -> bool:
    """Whether two boxes are the same face: IoU above the threshold, or one mostly inside the
    other (a face and a part of it found by another tile)."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return False
    inter = iw * ih
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area_a + area_b - inter) > iou_threshold or inter / min(area_a, area_b) > 0.6
