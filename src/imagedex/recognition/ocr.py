"""Offline OCR: text lines in images with RapidOCR's bundled PP-OCRv6 ONNX models.

The PyPI package ``rapidocr`` (3.x, Apache-2.0; PP-OCR weights Apache-2.0 by PaddlePaddle) ships
three ONNX models inside the wheel: ``PP-OCRv6_det_small`` (text detection, DB),
``PP-OCRv6_rec_small`` (recognition, Chinese + English/Latin characters, dictionary embedded in
the ONNX metadata) and ``ch_ppocr_mobile_v2.0_cls_mobile`` (0°/180° line orientation). This
module points rapidocr at those files by explicit path, so its downloader (used for every other
language, version or size) is never reached; ``bundled_model_paths`` fails loudly if a file is
missing instead of letting rapidocr fetch it.

OCR costs roughly a second per photo on two cores, and most photos hold no text, so each image
first goes through a **gate**: the detection model alone on a copy scaled to ``gate_side`` px
(default 480) on its longer side. Only when it finds a text box with a score of at least
``gate_box_score`` does the full pipeline (detection at up to ``max_side`` px, then recognition
of every box) run. An image no larger than ``gate_side`` skips the gate: the full pipeline's own
detection pass is then just as cheap and recognition runs only on the boxes it finds.

**Detail pass.** The worker hands analyzers a small decoded copy (a 4000x3000 JPEG arrives as
500x375), where text under about 60 px tall in the original is a few pixels high and lost.
Through ``analyze_detailed`` the worker also passes the original file: when the gate finds text
and the original is larger than the copy, the original is decoded again at up to
``detail_side`` (2048) px on its longer side (JPEG draft mode keeps that cheap), text is
detected on it at ``max_side``, and every detected region, padded and merged with its
neighbours, is cut from the detailed copy and read on its own (detection again, to split lines,
then recognition) at its own resolution, up to ``max_side``. So an 18 px line on a 4000 px photo
is read at ~9 px instead of ~2 px. At most ``max_regions`` regions are zoomed into (the
largest); with more, the detailed copy is read as a whole at ``max_side``. Time and memory are
bounded by ``detail_side``: one decode at most 2048 px wide, plus crops of it.

**Wide gate** (v3). When the original is over 1.5x the worker's copy, the gate looks at a
``wide_gate_side`` (1024) px decode of the original instead of the copy, where small print is
still text-like; its regions are read from that decode, and re-read (enlarged) from the
``detail_side`` decode only where the lines are under ``small_text_px`` tall
(docs/analyzers-ocr.md).
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from imagedex.errors import ImageDecodeError, RecognitionError
from imagedex.ingest.imaging import decode_image
from imagedex.recognition.base import Analysis, Analyzer, AnalyzerInput
from imagedex.recognition.runtime import Lazy, cpu_threads

__all__ = [
    "OcrResult",
    "TextAnalyzer",
    "TextLine",
    "bundled_model_paths",
    "reading_order",
]

#: The model files this analyzer uses, all inside the installed ``rapidocr`` package.
DET_MODEL = "PP-OCRv6_det_small.onnx"
REC_MODEL = "PP-OCRv6_rec_small.onnx"
CLS_MODEL = "ch_ppocr_mobile_v2.0_cls_mobile.onnx"
#: Score a line with fewer than two letters/digits needs (see ``TextAnalyzer._needed_score``).
SHORT_LINE_SCORE = 0.95
#: Padding around a detected region before it is cut out: a share of its height, plus pixels.
_REGION_PAD = (0.5, 8)
#: The original may decode somewhat under ``detail_side`` so JPEG draft mode can halve it.
_DRAFT_SLACK = 0.9
#: How much larger than the worker's copy the original must be for the detail pass.
_MORE_DETAIL = 1.25
#: How much larger than the worker's copy the original must be for the gate to look at a
#: ``wide_gate_side`` decode of it instead of the copy.
_WIDE_GATE = 1.5
#: Enlargement of a region cut from the ``detail_side`` decode, for small print.
_SMALL_PRINT_ZOOM = 2.0


@dataclass(frozen=True)
class TextLine:
    """One recognised line: its text, recognition score (0-1) and box in input-image pixels.

    ``box`` is ``(left, top, right, bottom)``, the axis-aligned bounds of the detected
    quadrilateral, in the coordinates of the image passed to ``analyze``/``read``.
    """

    text: str
    score: float
    box: tuple[int, int, int, int]


@dataclass
class OcrResult:
    """Everything ``TextAnalyzer.read`` learned about one image."""

    lines: list[TextLine] = field(default_factory=list)
    #: True when recognition ran (the detector found at least one text box); False when the
    #: gate, or for small images the full pipeline's own detection, found none.
    recognized: bool = False
    #: Text boxes the gate found; for an image no larger than ``gate_side`` (no separate gate
    #: pass) the boxes the full pipeline's detection found; ``None`` with the gate off.
    gate_boxes: int | None = None

    @property
    def text(self) -> list[str]:
        return [line.text for line in self.lines]

    @property
    def text_regions(self) -> list[dict[str, Any]]:
        """The lines as plain dicts (``text``, ``score``, ``box``), ready for a JSON document."""
        return [
            {"text": line.text, "score": round(line.score, 4), "box": list(line.box)}
            for line in self.lines
        ]


def bundled_model_paths() -> dict[str, Path]:
    """Paths of the det/rec/cls ONNX files shipped inside the rapidocr wheel.

    Raises RecognitionError when rapidocr is missing or a file is absent: rapidocr would
    otherwise try to download it.
    """
    try:
        import rapidocr
    except ImportError as exc:  # pragma: no cover - rapidocr is a declared dependency
        raise RecognitionError(f"OCR needs the rapidocr package: {exc}") from exc
    root = Path(rapidocr.__file__).resolve().parent / "models"
    paths = {"det": root / DET_MODEL, "rec": root / REC_MODEL, "cls": root / CLS_MODEL}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise RecognitionError(
            "rapidocr's bundled OCR models are missing (expected rapidocr 3.10+): "
            + ", ".join(missing)
        )
    return paths


def reading_order(lines: Sequence[TextLine]) -> list[TextLine]:
    """Sort lines top-to-bottom, and left-to-right within a row.

    Two lines share a row when their vertical centres are closer than half the smaller line's
    height (so a slightly tilted or taller neighbour still reads left-to-right).
    """
    if not lines:
        return []
    by_top = sorted(lines, key=lambda ln: ((ln.box[1] + ln.box[3]) / 2, ln.box[0]))
    rows: list[list[TextLine]] = []
    row_centre = 0.0
    row_height = 0.0
    for line in by_top:
        centre = (line.box[1] + line.box[3]) / 2
        height = max(1, line.box[3] - line.box[1])
        if rows and abs(centre - row_centre) < 0.5 * min(height, row_height):
            rows[-1].append(line)
            count = len(rows[-1])
            row_centre += (centre - row_centre) / count
            row_height += (height - row_height) / count
        else:
            rows.append([line])
            row_centre, row_height = centre, float(height)
    return [line for row in rows for line in sorted(row, key=lambda ln: ln.box[0])]


def _scaled(image: Image.Image, side: int) -> tuple[Image.Image, float]:
    """``image`` shrunk so its longer side is at most ``side`` px, and the factor applied."""
    width, height = image.size
    longest = max(width, height)
    if longest <= side:
        return image, 1.0
    factor = side / longest
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    # reducing_gap: integer box-reduce first, then an antialiased resize (fast on huge images)
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0), factor


@dataclass(frozen=True)
class _Run:
    """rapidocr's answer for one image, and the scale it worked at."""

    raw: Any
    factor: float


def _regions(quads: Any, factor: float, size: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """Detected quadrilaterals (at ``factor`` scale) as padded boxes in ``size`` pixels, boxes
    that overlap merged, largest first."""
    if quads is None:
        return []
    width, height = size
    boxes = []
    for quad in quads:
        pts = np.asarray(quad, dtype=np.float64).reshape(-1, 2) / factor
        left, top = pts.min(axis=0)
        right, bottom = pts.max(axis=0)
        pad = (bottom - top) * _REGION_PAD[0] + _REGION_PAD[1]
        boxes.append(
            [
                max(0, math.floor(left - pad)),
                max(0, math.floor(top - pad)),
                min(width, math.ceil(right + pad)),
                min(height, math.ceil(bottom + pad)),
            ]
        )
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    boxes[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    boxes = [b for b in boxes if b[2] > b[0] and b[3] > b[1]]
    boxes.sort(key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))
    return [(b[0], b[1], b[2], b[3]) for b in boxes]


def _clipped(line: TextLine, size: tuple[int, int]) -> TextLine:
    left, top, right, bottom = line.box
    width, height = size
    box = (min(width, left), min(height, top), min(width, right), min(height, bottom))
    return TextLine(line.text, line.score, box)


def _stored_side(source: bytes) -> int:
    """The longer side the file declares (header only; 0 when Pillow cannot tell)."""
    try:
        with Image.open(io.BytesIO(source)) as probe:
            return max(probe.size)
    except Exception:  # the worker decoded it already; an odd header just skips the detail pass
        return 0


def _bgr(image: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8)[:, :, ::-1])


class TextAnalyzer(Analyzer):
    """Reads text lines in RGB images (implements ``Recognizer``).

    ``min_score``: recognition score (0-1) a line needs to be reported; a line with fewer
    than two letters/digits needs at least ``SHORT_LINE_SCORE`` (0.95).
    ``max_side``: longer side (px) the full pipeline works at; larger images are scaled down,
    which bounds time and memory (text smaller than about 8 px after scaling is lost).
    ``gate``: run the cheap detection-only gate before the full pipeline (default on).
    ``gate_side``: longer side (px) of the copy the gate looks at.
    ``gate_box_score``: mean detection score a box needs for the gate to pass the image.
    ``use_angle_cls``: also run the 0°/180° line-orientation classifier (off: upside-down
    text is rare in photos and the classifier adds ~10% per line).
    ``threads``: onnxruntime intra-op threads (default: every CPU this process may use).
    ``detail_side``, ``max_regions``: the detail pass (module doc); ``max_source_pixels`` bounds
    the originals it decodes (larger ones are read from the worker's copy only).

    Models load on first use, once per instance. Calls are serialised by a lock: rapidocr's
    pipeline object keeps per-call settings, and onnxruntime already uses every core.
    """

    name = "ocr"
    version = "3"  # 2: detail pass on the original; 3: gate on a ~1024 px original

    def __init__(
        self,
        *,
        min_score: float = 0.7,
        max_side: int = 1280,
        gate: bool = True,
        gate_side: int = 480,
        gate_box_score: float = 0.6,
        use_angle_cls: bool = False,
        threads: int | None = None,
        detail_side: int = 2048,
        max_regions: int = 12,
        max_source_pixels: int = 40_000_000,
        wide_gate_side: int = 1024,
        small_text_px: int = 16,
    ) -> None:
        if not 0.0 <= min_score <= 1.0:
            raise ValueError("min_score must be between 0 and 1")
        if max_side < 64:
            raise ValueError("max_side must be at least 64")
        if not 64 <= gate_side <= max_side:
            raise ValueError("gate_side must be between 64 and max_side")
        if not 0.0 <= gate_box_score <= 1.0:
            raise ValueError("gate_box_score must be between 0 and 1")
        if detail_side < max_side:
            raise ValueError("detail_side must be at least max_side")
        if max_regions < 1:
            raise ValueError("max_regions must be at least 1")
        if not gate_side <= wide_gate_side <= max_side:
            raise ValueError("wide_gate_side must be between gate_side and max_side")
        if small_text_px < 1:
            raise ValueError("small_text_px must be at least 1")
        self.wide_gate_side = int(wide_gate_side)
        self.small_text_px = int(small_text_px)
        self.detail_side = int(detail_side)
        self.max_regions = int(max_regions)
        self.max_source_pixels = int(max_source_pixels)
        self.min_score = float(min_score)
        self.max_side = int(max_side)
        self.gate = bool(gate)
        self.gate_side = int(gate_side)
        self.gate_box_score = float(gate_box_score)
        self.use_angle_cls = bool(use_angle_cls)
        self.threads = cpu_threads(threads)
        self._run_lock = threading.Lock()
        self._engine: Lazy[Any] = Lazy(self._create_engine)

    # ------------------------------------------------------------------ loading

    def _load(self) -> Any:
        return self._engine.get()

    def _create_engine(self) -> Any:
        paths = bundled_model_paths()
        try:
            from rapidocr import RapidOCR

            params: dict[str, Any] = {
                "Global.log_level": "error",
                "Global.text_score": 0.0,  # filtered here, with min_score
                "Global.max_side_len": self.max_side,
                "Global.min_side_len": 32,
                "Global.use_cls": self.use_angle_cls,
                "Det.model_path": str(paths["det"]),
                "Det.limit_type": "max",
                "Det.limit_side_len": self.max_side,
                "Rec.model_path": str(paths["rec"]),
                "Cls.model_path": str(paths["cls"]),
                "EngineConfig.onnxruntime.intra_op_num_threads": self.threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            }
            engine = RapidOCR(params=params)
            # Load the three sessions now (rapidocr would do it on first call), so load
            # failures surface here rather than as an empty result.
            loaders = ["_load_det_model", "_load_rec_model"]
            if self.use_angle_cls:
                loaders.append("_load_cls_model")
            for attr in loaders:
                loader = getattr(engine, attr, None)
                if callable(loader):
                    loader()
        except RecognitionError:
            raise
        except Exception as exc:
            raise RecognitionError(f"cannot load the RapidOCR models: {exc}") from exc
        return engine

    # ------------------------------------------------------------------ inference

    def text_boxes(self, image: Image.Image, side: int | None = None) -> int:
        """How many text boxes the detection model alone finds at ``side`` px (the gate)."""
        return self._gate_count(self._detect(self._rgb(image), side or self.gate_side).raw)

    def _detect(self, image: Image.Image, side: int) -> _Run:
        engine = self._load()
        small, factor = _scaled(image, side)
        with self._run_lock:
            try:
                det = engine(_bgr(small), use_det=True, use_cls=False, use_rec=False)
            except Exception as exc:
                raise RecognitionError(f"OCR text detection failed: {exc}") from exc
        return _Run(det, factor)

    def _gate_count(self, det: Any) -> int:
        scores = getattr(det, "scores", None)
        if scores is None:
            return 0
        return sum(1 for s in scores if float(s) >= self.gate_box_score)

    def read(self, image: Image.Image, source: bytes | None = None) -> OcrResult:
        """Gate, then (if it passes) detect and recognise; lines in reading order.

        ``source``: the original file ``image`` was decoded from, for the detail pass (module
        doc); line boxes are always in ``image``'s pixels.
        """
        image = self._rgb(image)
        result = OcrResult()
        wide = self._wide_copy(image, source) if self.gate else None
        if wide is not None:
            return self._read_wide(image, wide, source, result)
        small = max(image.size) <= self.gate_side
        if self.gate and not small:
            result.gate_boxes = self.text_boxes(image)
            if result.gate_boxes == 0:
                return result
        detail = self._detail(image, source)
        if detail is not None:
            return self._read_regions(image, detail, result)
        out = self._run(image, rec=True)
        found = getattr(out.raw, "boxes", None)
        boxes = 0 if found is None else len(found)
        if self.gate and small:
            result.gate_boxes = boxes
        result.recognized = boxes > 0 and getattr(out.raw, "txts", None) is not None
        result.lines = reading_order(self._lines(out.raw, out.factor, image.size))
        return result

    #: The detail pass reads the original file (module doc), so the worker keeps it.
    reads_original = True

    def analyze_inputs(self, inputs: Sequence[AnalyzerInput]) -> list[Analysis]:
        """One Analysis per image; ``text`` holds the recognised lines in reading order."""
        return [Analysis(text=self.read(i.image, i.original()).text) for i in inputs]

    # ------------------------------------------------------------------ the wide gate

    def _wide_copy(self, image: Image.Image, source: bytes | None) -> Image.Image | None:
        """The original at about ``wide_gate_side`` px, when it is much larger than ``image``."""
        longest = max(image.size)
        if source is None or longest >= self.wide_gate_side:
            return None
        if _stored_side(source) <= longest * _WIDE_GATE:
            return None
        ratio = min(image.size) / longest
        # no slack here: a draft at or above the gate size, shrunk smoothly, keeps faint print
        # that a coarser DCT-scaled draft blurs away
        draft = max(1, math.ceil(self.wide_gate_side * ratio))
        # when the original cannot be decoded, the worker's copy goes through the ordinary gate
        return self._original_at(source, draft, self.wide_gate_side, longest * _WIDE_GATE)

    def _read_wide(
        self, image: Image.Image, wide: Image.Image, source: bytes | None, result: OcrResult
    ) -> OcrResult:
        """Gate on ``wide``; read each region from it, and again from a ``detail_side`` decode of
        the original where the lines read in ``wide`` are under ``small_text_px`` tall or none
        is read (the gate's boxes often cover a whole block, so their height says little)."""
        found = self._detect(wide, self.wide_gate_side)
        result.gate_boxes = self._gate_count(found.raw)
        if result.gate_boxes == 0:
            return result
        # only the boxes the gate trusts: a weak box around texture, padded, can swallow the
        # print and leave one huge region read at a scale where it is lost again
        quads = [
            quad
            for quad, score in zip(
                found.raw.boxes if found.raw.boxes is not None else [],
                found.raw.scores,
                strict=False,
            )
            if float(score) >= self.gate_box_score
        ]
        regions = _regions(quads, found.factor, wide.size)
        if not regions:
            return result
        back = max(image.size) / max(wide.size)  # wide pixels -> image pixels
        lines: list[TextLine] = []
        if len(regions) > self.max_regions:
            out = self._run(wide, rec=True)
            lines = self._lines(out.raw, out.factor / back, image.size)
        else:
            detail: Image.Image | None = None
            for region in regions:
                read = self._read_region(wide, region, back)
                if read and min(ln.box[3] - ln.box[1] for ln in read) >= self.small_text_px * back:
                    lines += read
                    continue
                if detail is None:
                    detail = self._detail(image, source) or wide
                if detail is wide:
                    lines += read
                    continue
                zoom = max(detail.size) / max(wide.size)
                box = tuple(round(v * zoom) for v in region)
                # the detector misses text under ~10 px even here: enlarge the crop
                back_detail = max(image.size) / max(detail.size)
                lines += self._read_region(detail, box, back_detail, grow=_SMALL_PRINT_ZOOM)
        result.recognized = True
        result.lines = reading_order([_clipped(line, image.size) for line in lines])
        return result

    def _read_region(
        self, source: Image.Image, box: tuple[int, ...], back: float, grow: float = 1.0
    ) -> list[TextLine]:
        """Lines read in ``box`` of ``source`` enlarged up to ``grow`` times (bounded by
        ``max_side``), their boxes in ``source`` pixels scaled by ``back``."""
        left, top, right, bottom = box
        crop = source.crop((left, top, right, bottom))
        grow = min(grow, self.max_side / max(crop.size))
        if grow > 1:
            size = (round(crop.width * grow), round(crop.height * grow))
            crop = crop.resize(size, Image.Resampling.BICUBIC)
        else:
            grow = 1.0
        out = self._run(crop, rec=True)
        factor = out.factor * crop.width / (right - left)
        return [
            TextLine(
                line.text,
                line.score,
                (
                    math.floor((line.box[0] + left) * back),
                    math.floor((line.box[1] + top) * back),
                    math.ceil((line.box[2] + left) * back),
                    math.ceil((line.box[3] + top) * back),
                ),
            )
            for line in self._lines(out.raw, factor, (right - left, bottom - top))
        ]

    # ------------------------------------------------------------------ the detail pass

    def _detail(self, image: Image.Image, source: bytes | None) -> Image.Image | None:
        """The original at up to ``detail_side`` px, when that has more pixels than ``image``."""
        longest = max(image.size)
        if longest >= self.detail_side:
            return _scaled(image, self.detail_side)[0] if longest > self.max_side else None
        if source is None or _stored_side(source) <= longest * _MORE_DETAIL:
            return None
        ratio = min(image.size) / longest
        draft = max(1, math.floor(self.detail_side * ratio * _DRAFT_SLACK))
        # when the original cannot be decoded, the worker's copy is read as it is
        return self._original_at(source, draft, self.detail_side, longest * _MORE_DETAIL)

    def _original_at(
        self, source: bytes, draft: int, side: int, larger_than: float
    ) -> Image.Image | None:
        """The original draft-decoded near ``draft`` px and scaled to at most ``side``, if that
        decodes and comes out larger than ``larger_than`` px."""
        try:
            decoded = decode_image(
                source, max_pixels=self.max_source_pixels, draft_size=(draft, draft)
            )
        except ImageDecodeError:
            return None
        scaled = self._rgb(_scaled(decoded.image, side)[0])
        return scaled if max(scaled.size) > larger_than else None

    def _read_regions(
        self, image: Image.Image, detail: Image.Image, result: OcrResult
    ) -> OcrResult:
        """Detect on ``detail`` at ``max_side``, then read each region at its own resolution."""
        found = self._run(detail, rec=False)
        quads = getattr(found.raw, "boxes", None)
        regions = _regions(quads, found.factor, detail.size)
        back = max(image.size) / max(detail.size)  # detail pixels -> image pixels
        if not regions:
            return result
        lines: list[TextLine] = []
        if len(regions) > self.max_regions:
            out = self._run(detail, rec=True)
            lines = self._lines(out.raw, out.factor * (1 / back), image.size)
        else:
            for left, top, right, bottom in regions:
                out = self._run(detail.crop((left, top, right, bottom)), rec=True)
                for line in self._lines(out.raw, out.factor, (right - left, bottom - top)):
                    l0, t0, r0, b0 = line.box
                    box = (
                        min(image.width, math.floor((l0 + left) * back)),
                        min(image.height, math.floor((t0 + top) * back)),
                        min(image.width, math.ceil((r0 + left) * back)),
                        min(image.height, math.ceil((b0 + top) * back)),
                    )
                    lines.append(TextLine(line.text, line.score, box))
        result.recognized = True
        result.lines = reading_order(lines)
        return result

    def _run(self, image: Image.Image, *, rec: bool) -> _Run:
        engine = self._load()
        work, factor = _scaled(image, self.max_side)
        with self._run_lock:
            try:
                raw = engine(
                    _bgr(work), use_det=True, use_cls=rec and self.use_angle_cls, use_rec=rec
                )
            except Exception as exc:
                raise RecognitionError(f"OCR failed: {exc}") from exc
        return _Run(raw, factor)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _rgb(image: Image.Image) -> Image.Image:
        if image.width < 1 or image.height < 1:
            raise RecognitionError("cannot read text in an empty (0-pixel) image")
        return image if image.mode == "RGB" else image.convert("RGB")

    def _needed_score(self, text: str) -> float:
        # A lone character is usually texture (latte art read as "8", a fence as "I"): it must
        # be recognised with near certainty to count.
        if sum(ch.isalnum() for ch in text) < 2:
            return max(self.min_score, SHORT_LINE_SCORE)
        return self.min_score

    def _lines(self, out: Any, factor: float, size: tuple[int, int]) -> list[TextLine]:
        boxes = getattr(out, "boxes", None)
        texts = getattr(out, "txts", None)
        scores = getattr(out, "scores", None)
        if boxes is None or texts is None or scores is None:
            return []
        width, height = size
        lines = []
        for quad, text, score in zip(boxes, texts, scores, strict=False):
            text = " ".join(str(text).split())
            if not text or float(score) < self._needed_score(text):
                continue
            pts = np.asarray(quad, dtype=np.float64).reshape(-1, 2) / factor
            left, top = pts.min(axis=0)
            right, bottom = pts.max(axis=0)
            box = (
                int(np.clip(np.floor(left), 0, width)),
                int(np.clip(np.floor(top), 0, height)),
                int(np.clip(np.ceil(right), 0, width)),
                int(np.clip(np.ceil(bottom), 0, height)),
            )
            lines.append(TextLine(text=text, score=float(score), box=box))
        return lines
