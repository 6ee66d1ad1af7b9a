"""Face embeddings: dlib's 128-d ResNet face descriptor on aligned face chips.

The model (``models/face_descriptor.onnx``, built by ``tools/build_face_embedding_onnx.py`` from
the uint8 weights in ``@vladmandic/face-api``; see ``docs/models.md``) maps a 150x150 face chip to
128 numbers. Two faces of the same person lie less than 0.6 apart (Euclidean), dlib's rule.

Alignment, as dlib makes the chips the model was trained on (``get_face_chip_details(shape,
150, 0.25)``): a similarity transform (rotation, uniform scale, shift) puts the two eye centres
where dlib's 5-point template puts them, in a chip padded by 0.25 of the face on every side. In
150 px that is (47.7, 47.1) for the eye on the image's left and (100.3, 47.1) for the other: the
middles of the template's eye corners, ``(0.25 + x) / 1.5 * 150``. Eyes alone fix a similarity
transform exactly, so nose and mouth keypoints are not needed (dlib fits all five points by least
squares; its template eyes are level and symmetric, so eyes give the same chip up to how far the
nose sits from the eyes). A face much larger than the chip is first reduced with an antialiasing
resize (dlib uses an image pyramid), then the chip is sampled bilinearly; what lies outside the
image is black, as in dlib. ``docs/benchmarks.md`` ("Face pairs") measures this against other
layouts (face-api's square crop of the face box, other paddings).

Keypoints: each face carries ``landmarks`` with ``left_eye`` and ``right_eye`` as (x, y)
fractions of the image, Rekognition's convention (``eyeLeft``): ``left_eye`` is the eye on the
image's left in an upright face (the person's right eye). Names are trusted, so a face upside
down still aligns upright.

Embeddings are biometric data: they are for matching inside imagedex and never part of an API
answer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

from imagedex.errors import RecognitionError
from imagedex.recognition.runtime import Lazy, cpu_threads, onnx_session, packaged_model

__all__ = [
    "CHIP_SIZE",
    "DESCRIPTOR_SIZE",
    "SAME_PERSON_DISTANCE",
    "FaceEmbedder",
    "align_face",
    "distance",
    "distances",
    "eye_points",
]

MODEL_FILE = "face_descriptor.onnx"
CHIP_SIZE = 150
DESCRIPTOR_SIZE = 128
#: dlib's threshold: descriptors of one person lie closer than this.
SAME_PERSON_DISTANCE = 0.6
PADDING = 0.25
# dlib's 5-point template (shape_predictor_5_face_landmarks): corners of the eye on the image's
# left (0.1205750620789, 0.2137274526848), (0.3340850613712, 0.2290642403242) and of the other
# (0.6460604764104, 0.2289674387677), (0.8595674595992, 0.2134981538014); the eye centre is the
# middle of its corners, moved into the padded chip as (padding + p) / (1 + 2 * padding).
_TEMPLATE_LEFT = ((0.1205750620789 + 0.3340850613712) / 2, (0.2137274526848 + 0.2290642403242) / 2)
_TEMPLATE_RIGHT = ((0.6460604764104 + 0.8595674595992) / 2, (0.2289674387677 + 0.2134981538014) / 2)
_BATCH = 32
_MAX_SCALE_WITHOUT_REDUCING = 1.5  # source px per chip px above which the face is reduced first


def _chip_point(p: tuple[float, float], size: int, padding: float) -> tuple[float, float]:
    return (
        (padding + p[0]) / (1 + 2 * padding) * size,
        (padding + p[1]) / (1 + 2 * padding) * size,
    )


def _point(value: Any, what: str) -> tuple[float, float]:
    if isinstance(value, Mapping):
        value = (value.get("x"), value.get("y"))
    try:
        x, y = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be an (x, y) pair of fractions, not {value!r}") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f"{what} must be finite, not {value!r}")
    return x, y


def eye_points(face: Any) -> tuple[tuple[float, float], tuple[float, float]]:
    """The (left_eye, right_eye) fractions a face carries: from ``face["landmarks"]``,
    ``face.landmarks`` or ``face`` itself as a mapping with ``left_eye``/``right_eye``."""
    if isinstance(face, Mapping):
        landmarks = face.get("landmarks", face)
    else:
        landmarks = getattr(face, "landmarks", None)
    if not isinstance(landmarks, Mapping) or not {"left_eye", "right_eye"} <= landmarks.keys():
        raise ValueError("a face needs landmarks 'left_eye' and 'right_eye' to be embedded")
    left = _point(landmarks["left_eye"], "left_eye")
    right = _point(landmarks["right_eye"], "right_eye")
    if left == right:
        raise ValueError("a face's two eyes cannot be at the same point")
    return left, right


def align_face(
    image: Image.Image,
    left_eye: tuple[float, float],
    right_eye: tuple[float, float],
    *,
    size: int = CHIP_SIZE,
    padding: float = PADDING,
) -> Image.Image:
    """The face chip: `image` turned, scaled and shifted so the eyes (pixel coordinates of
    `image`) land on dlib's template; RGB, `size` x `size`."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    src = np.array([left_eye, right_eye], dtype=np.float64)
    dst = np.array(
        [_chip_point(_TEMPLATE_LEFT, size, padding), _chip_point(_TEMPLATE_RIGHT, size, padding)]
    )
    # similarity from chip to image: image = s * R @ chip + t, from the two point pairs
    d_src, d_dst = src[1] - src[0], dst[1] - dst[0]
    ratio = complex(*d_src) / complex(*d_dst)  # s * e^(i*theta)
    scale = abs(ratio)
    if scale == 0 or not math.isfinite(scale):
        raise ValueError("the eyes must be two distinct, finite points")
    a, b = ratio.real, ratio.imag
    tx = src[0, 0] - (a * dst[0, 0] - b * dst[0, 1])
    ty = src[0, 1] - (b * dst[0, 0] + a * dst[0, 1])
    if scale > _MAX_SCALE_WITHOUT_REDUCING:
        # reduce the part of the image the chip covers first (antialiased), so a large face is
        # not sampled sparsely
        corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], dtype=np.float64)
        xs = a * corners[:, 0] - b * corners[:, 1] + tx
        ys = b * corners[:, 0] + a * corners[:, 1] + ty
        x0, y0 = max(0, math.floor(xs.min()) - 2), max(0, math.floor(ys.min()) - 2)
        x1 = min(image.width, math.ceil(xs.max()) + 2)
        y1 = min(image.height, math.ceil(ys.max()) + 2)
        if x1 - x0 < 1 or y1 - y0 < 1:  # the chip lies wholly outside the image
            return Image.new("RGB", (size, size))
        out_w = max(1, round((x1 - x0) / scale))
        out_h = max(1, round((y1 - y0) / scale))
        image = image.resize(
            (out_w, out_h), Image.Resampling.BICUBIC, box=(x0, y0, x1, y1), reducing_gap=2.0
        )
        fx, fy = (x1 - x0) / out_w, (y1 - y0) / out_h
        # the reduced image's own x and y factors (they differ by rounding), so nothing shears
        a, b, b_y, a_y = a / fx, b / fx, b / fy, a / fy
        tx, ty = (tx - x0) / fx, (ty - y0) / fy
    else:
        b_y, a_y = b, a
    # Pillow's affine maps each output pixel centre (x + 0.5) to the input; coefficients act on
    # pixel coordinates with centres at +0.5 on both sides, as the eye fractions are.
    coefficients = (a, -b, tx, b_y, a_y, ty)
    return image.transform(
        (size, size), Image.Transform.AFFINE, coefficients, Image.Resampling.BILINEAR
    )


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two descriptors (under ``SAME_PERSON_DISTANCE``: the same
    person, dlib's rule)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != (DESCRIPTOR_SIZE,) or b.shape != (DESCRIPTOR_SIZE,):
        raise ValueError(f"descriptors must have {DESCRIPTOR_SIZE} numbers each")
    return float(np.linalg.norm(a - b))


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Every Euclidean distance between the rows of `a` [n, 128] and of `b` [m, 128]: [n, m]."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != DESCRIPTOR_SIZE or b.shape[1] != DESCRIPTOR_SIZE:
        raise ValueError(f"descriptors must be arrays of shape [n, {DESCRIPTOR_SIZE}]")
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(squared, 0.0))


class FaceEmbedder:
    """dlib's face descriptor for the faces of an image (thread-safe; the model loads on first
    use)."""

    #: changes whenever the same face would get another descriptor (model or alignment)
    version = "dlib-resnet-v1/chip150-pad0.25"

    def __init__(self, *, threads: int | None = None) -> None:
        self.threads = cpu_threads(threads)
        self._session: Lazy[Any] = Lazy(self._load)

    def _load(self) -> Any:
        return onnx_session(packaged_model(MODEL_FILE), self.threads, "the face descriptor model")

    def chips(self, image: Image.Image, faces: Sequence[Any]) -> list[Image.Image]:
        """One aligned 150x150 chip per face (see the module doc)."""
        if image.width < 1 or image.height < 1:
            raise RecognitionError("cannot embed faces of an empty (0-pixel) image")
        chips = []
        for face in faces:
            (lx, ly), (rx, ry) = eye_points(face)
            chips.append(
                align_face(
                    image,
                    (lx * image.width, ly * image.height),
                    (rx * image.width, ry * image.height),
                )
            )
        return chips

    def embed_chips(self, chips: Sequence[Image.Image]) -> np.ndarray:
        """Descriptors of chips already aligned: float32 [n, 128]."""
        if not chips:
            return np.zeros((0, DESCRIPTOR_SIZE), dtype=np.float32)
        session = self._session.get()
        out = []
        for start in range(0, len(chips), _BATCH):
            batch = np.stack(
                [
                    np.asarray(chip.convert("RGB").resize((CHIP_SIZE, CHIP_SIZE)), np.float32)
                    for chip in chips[start : start + _BATCH]
                ]
            ).transpose(0, 3, 1, 2)
            try:
                out.append(session.run(None, {"pixels": np.ascontiguousarray(batch)})[0])
            except Exception as exc:  # onnxruntime's own exception types
                raise RecognitionError(f"the face descriptor model failed: {exc}") from exc
        return np.concatenate(out).astype(np.float32)

    def embed(self, image: Image.Image, faces: Sequence[Any]) -> np.ndarray:
        """One 128-d descriptor per face, in order: float32 [len(faces), 128]. Each face carries
        ``left_eye``/``right_eye`` landmarks as fractions of `image` (see ``eye_points``)."""
        return self.embed_chips(self.chips(image, faces))
