"""The recognizer protocol every analyzer implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from PIL import Image

from imagedex.documents import Label


@dataclass
class Analysis:
    """What one recognizer found in one image. Fields a recognizer does not produce stay empty."""

    labels: list[Label] = field(default_factory=list)
    faces: list[dict[str, Any]] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    moderation: list[dict[str, Any]] = field(default_factory=list)
    embedding: list[float] | None = None


@runtime_checkable
class Recognizer(Protocol):
    """Analyzes batches of decoded RGB images. `name`/`version` go into `analyzed_with`."""

    name: str
    version: str

    def analyze(self, images: Sequence[Image.Image]) -> list[Analysis]:
        """Return one Analysis per input image, in order. Raise RecognitionError on failure."""
        ...
