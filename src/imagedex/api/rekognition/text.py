"""DetectText from the `ocr` analyzer: its lines as LINE detections and their words as WORD
detections, with geometry as fractions of the image.

The OCR model reads lines, not words: a word's box is its share of the line's box, split in
proportion to character counts (spaces included). That is exact for monospaced text and close
for the proportional fonts of photos; the line boxes are the model's own."""

from __future__ import annotations

from typing import Any

from imagedex.api.rekognition.errors import RekognitionError
from imagedex.api.rekognition.images import RequestImage
from imagedex.api.rekognition.params import box, number, structure
from imagedex.recognition.ocr import TextAnalyzer

MAX_WORDS = 100  # Rekognition returns at most 100 words
MAX_REGIONS = 10

Box = tuple[float, float, float, float]  # left, top, width, height as fractions


def _geometry(b: Box) -> dict[str, Any]:
    left, top, width, height = b
    corners = ((left, top), (left + width, top), (left + width, top + height), (left, top + height))
    return {
        "BoundingBox": {"Width": width, "Height": height, "Left": left, "Top": top},
        "Polygon": [{"X": x, "Y": y} for x, y in corners],
    }


def _words(text: str, line: Box) -> list[tuple[str, Box]]:
    left, top, width, height = line
    per_char = width / max(1, len(text))
    words, offset = [], 0
    for word in text.split(" "):
        if word:
            words.append((word, (left + offset * per_char, top, len(word) * per_char, height)))
        offset += len(word) + 1
    return words


def _inside(b: Box, region: Box) -> bool:
    """Rekognition's rule: more than half of the word's box lies in the region."""
    left, top, width, height = b
    r_left, r_top, r_width, r_height = region
    overlap_w = max(0.0, min(left + width, r_left + r_width) - max(left, r_left))
    overlap_h = max(0.0, min(top + height, r_top + r_height) - max(top, r_top))
    return overlap_w * overlap_h > 0.5 * width * height


def _regions(filters: dict[str, Any]) -> list[Box]:
    raw = filters.get("RegionsOfInterest")
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_REGIONS:
        raise RekognitionError(
            "InvalidParameterException",
            f"Filters.RegionsOfInterest must be a list of at most {MAX_REGIONS} regions",
        )
    regions = []
    for i, region in enumerate(raw):
        where = f"Filters.RegionsOfInterest[{i}]"
        if isinstance(region, dict) and "BoundingBox" in region:
            regions.append(box(region["BoundingBox"], f"{where}.BoundingBox"))
        elif isinstance(region, dict) and isinstance(region.get("Polygon"), list):
            points = region["Polygon"]  # its bounding box
            xs = [number(p, "X", 0, 1, where=f"{where}.Polygon.") or 0.0 for p in points]
            ys = [number(p, "Y", 0, 1, where=f"{where}.Polygon.") or 0.0 for p in points]
            if not xs:
                raise RekognitionError("InvalidParameterException", f"{where}.Polygon is empty")
            regions.append((min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)))
        else:
            raise RekognitionError(
                "InvalidParameterException", f"{where} needs a BoundingBox or a Polygon"
            )
    return regions


def detect_text(params: dict[str, Any], image: RequestImage, ocr: TextAnalyzer) -> dict[str, Any]:
    filters = structure(params, "Filters")
    word_filter = structure(filters, "WordFilter", "Filters.")
    where = "Filters.WordFilter."
    min_confidence = number(word_filter, "MinConfidence", 0, 100, where=where) or 0.0
    min_width = number(word_filter, "MinBoundingBoxWidth", 0, 1, where=where) or 0.0
    min_height = number(word_filter, "MinBoundingBoxHeight", 0, 1, where=where) or 0.0
    regions = _regions(filters)

    def wanted(b: Box, confidence: float) -> bool:
        return (
            confidence >= min_confidence
            and b[2] >= min_width
            and b[3] >= min_height
            and (not regions or any(_inside(b, r) for r in regions))
        )

    picture = image.decoded.image
    result = ocr.read(picture, image.original)
    lines: list[dict[str, Any]] = []
    words: list[dict[str, Any]] = []
    for line in result.lines:
        if len(words) >= MAX_WORDS:
            break
        x0, y0, x1, y1 = line.box
        line_box = (
            x0 / picture.width,
            y0 / picture.height,
            (x1 - x0) / picture.width,
            (y1 - y0) / picture.height,
        )
        confidence = float(line.score) * 100.0
        kept = [(word, b) for word, b in _words(line.text, line_box) if wanted(b, confidence)]
        if not kept:
            continue
        line_id = len(lines)
        lines.append(
            {
                "DetectedText": line.text,
                "Type": "LINE",
                "Id": line_id,
                "Confidence": confidence,
                "Geometry": _geometry(line_box),
            }
        )
        for word, b in kept:
            if len(words) >= MAX_WORDS:
                break
            words.append(
                {
                    "DetectedText": word,
                    "Type": "WORD",
                    "ParentId": line_id,
                    "Confidence": confidence,
                    "Geometry": _geometry(b),
                }
            )
    for offset, detection in enumerate(words):
        detection["Id"] = len(lines) + offset
    return {"TextDetections": lines + words, "TextModelVersion": f"ocr-{ocr.version}"}
