"""Amazon Rekognition as a recognizer: DetectLabels and DetectModerationLabels.

Images stored in S3 are passed by reference (`S3Object`), so Rekognition reads them itself;
other images are sent as JPEG bytes. Responses are mapped to the same label documents as the
offline labeller (Rekognition's confidences are already percentages).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlparse

from PIL import Image

from imagedex.documents import Label
from imagedex.errors import RecognitionError
from imagedex.recognition.base import Analysis, Analyzer, AnalyzerInput

if TYPE_CHECKING:
    from imagedex.config import Settings

MAX_BYTES = 5 * 1024 * 1024  # Rekognition's limit for inline image bytes


def _jpeg(image: Image.Image) -> bytes:
    quality = 90
    while True:
        buf = io.BytesIO()
        image.convert("RGB").save(buf, "JPEG", quality=quality)
        if buf.tell() <= MAX_BYTES or quality <= 40:
            return buf.getvalue()
        quality -= 15


def _bbox(box: dict[str, Any]) -> dict[str, float]:
    return {
        "left": float(box.get("Left", 0.0)),
        "top": float(box.get("Top", 0.0)),
        "width": float(box.get("Width", 0.0)),
        "height": float(box.get("Height", 0.0)),
    }


def labels_from_response(response: dict[str, Any]) -> list[Label]:
    """DetectLabels' `Labels` as imagedex labels (name, confidence, parents, aliases, boxes)."""
    labels = []
    for item in response.get("Labels", []):
        labels.append(
            Label(
                label=str(item["Name"]),
                confidence=float(item.get("Confidence", 0.0)),
                parents=tuple(str(p["Name"]) for p in item.get("Parents", [])),
                aliases=tuple(str(a["Name"]) for a in item.get("Aliases", [])),
                instances=tuple(
                    {"bbox": _bbox(i.get("BoundingBox", {})), "confidence": float(i["Confidence"])}
                    for i in item.get("Instances", [])
                    if "Confidence" in i
                ),
            )
        )
    return sorted(labels, key=lambda lb: -lb.confidence)


def moderation_from_response(response: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "label": str(item["Name"]),
            "confidence": float(item.get("Confidence", 0.0)),
            "parent": str(item.get("ParentName", "")),
        }
        for item in response.get("ModerationLabels", [])
    ]


class RekognitionRecognizer(Analyzer):
    name = "rekognition"
    version = "detect-labels-v3"

    def __init__(
        self,
        client: Any = None,
        min_confidence: float = 55.0,
        max_labels: int = 50,
        moderation: bool = True,
    ) -> None:
        if client is None:
            from imagedex.aws import client as aws_client

            client = aws_client("rekognition")
        self.client = client
        self.min_confidence = min_confidence
        self.max_labels = max_labels
        self.moderation = moderation

    def _image_param(self, image: Image.Image, location: str | None) -> dict[str, Any]:
        if location and location.startswith("s3://"):
            parsed = urlparse(location)
            return {"S3Object": {"Bucket": parsed.netloc, "Name": parsed.path.lstrip("/")}}
        return {"Bytes": _jpeg(image)}

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(
            min_confidence=settings.rekognition_min_confidence,
            max_labels=settings.rekognition_max_labels,
            moderation=settings.rekognition_moderation,
        )

    def analyze_inputs(self, inputs: Sequence[AnalyzerInput]) -> list[Analysis]:
        """Rekognition has no batch call: one request (or two, with moderation) per image.
        Images stored in S3 are named by location (Rekognition reads them itself); others are
        sent as JPEG bytes."""
        results = []
        for item in inputs:
            param = self._image_param(item.image, item.location)
            try:
                response = self.client.detect_labels(
                    Image=param, MaxLabels=self.max_labels, MinConfidence=self.min_confidence
                )
                moderation = (
                    self.client.detect_moderation_labels(
                        Image=param, MinConfidence=self.min_confidence
                    )
                    if self.moderation
                    else {}
                )
            except Exception as exc:
                raise RecognitionError(f"Amazon Rekognition failed: {exc}") from exc
            results.append(
                Analysis(
                    labels=labels_from_response(response),
                    moderation=moderation_from_response(moderation),
                )
            )
        return results
