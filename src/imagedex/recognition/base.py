"""What every analyzer implements, and the one input type `analyze` takes.

An analyzer is a class with a `name` (the one name used in settings, `analyzed_with`,
`--analyzer` and the docs), a `version` (bumped when its output changes, so reprocessing knows
what is outdated) and `analyze(inputs)`. Subclass `Analyzer` and implement `analyze_images` (or
`analyze_inputs` when the analyzer needs the original file or its location); register the
class in `imagedex.recognition.ANALYZERS` (or through the `imagedex.analyzers` entry point).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

from PIL import Image

from imagedex.documents import Label
from imagedex.errors import RecognitionError

if TYPE_CHECKING:
    from imagedex.config import Settings


@dataclass
class Analysis:
    """What one recognizer found in one image. Fields a recognizer does not produce stay empty."""

    labels: list[Label] = field(default_factory=list)
    faces: list[dict[str, Any]] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    moderation: list[dict[str, Any]] = field(default_factory=list)
    embedding: list[float] | None = None
    #: Unit-length vector of how the image looks (the ImageNet model's pooled features), for
    #: "more like this"; unlike `embedding` it never depends on the file's name or labels.
    visual_embedding: list[float] | None = None


class AnalyzerInput:
    """One image to analyze: the decoded picture (RGB, draft-decoded to a working size), where
    it came from (`s3://bucket/key` or `file://...`, None for loose images) and the original
    file's bytes, read only when an analyzer asks for them."""

    __slots__ = ("_original", "image", "location")

    def __init__(
        self,
        image: Image.Image,
        location: str | None = None,
        original: bytes | Callable[[], bytes | None] | None = None,
    ) -> None:
        self.image = image
        self.location = location
        self._original = original

    def original(self) -> bytes | None:
        """The original file (fetched on the first call when given as a callable)."""
        if callable(self._original):
            self._original = self._original()
        return self._original


def as_inputs(images: Sequence[Image.Image | AnalyzerInput]) -> list[AnalyzerInput]:
    """Accept plain PIL images wherever inputs are expected (scripts, tests, benchmarks)."""
    return [i if isinstance(i, AnalyzerInput) else AnalyzerInput(i) for i in images]


@runtime_checkable
class Recognizer(Protocol):
    """Analyzes batches of images. `name`/`version` go into `analyzed_with`; `reads_original`
    declares that the analyzer reads `AnalyzerInput.original()`, so the worker keeps the file
    it fetched instead of fetching it again."""

    name: str
    version: str
    reads_original: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """The analyzer as a deployment's settings configure it."""
        ...

    def analyze(self, images: Sequence[Image.Image | AnalyzerInput]) -> list[Analysis]:
        """Return one Analysis per input image, in order. Raise RecognitionError on failure."""
        ...


class Analyzer:
    """Base class of the built-in analyzers (implements `Recognizer`)."""

    name: str
    version: str
    reads_original: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """The analyzer as the deployment's settings configure it (defaults when none apply)."""
        return cls()

    def analyze(self, images: Sequence[Image.Image | AnalyzerInput]) -> list[Analysis]:
        inputs = as_inputs(images)
        results = self.analyze_inputs(inputs)
        if len(results) != len(inputs):
            raise RecognitionError(f"{self.name} returned {len(results)} results for {len(inputs)}")
        return results

    def analyze_inputs(self, inputs: Sequence[AnalyzerInput]) -> list[Analysis]:
        """One Analysis per input; by default, from the decoded pictures alone."""
        return self.analyze_images([i.image for i in inputs])

    def analyze_images(self, images: Sequence[Image.Image]) -> list[Analysis]:
        raise NotImplementedError(
            f"{type(self).__name__} implements neither analyze_inputs nor analyze_images"
        )


def bbox_dict(left: float, top: float, width: float, height: float) -> dict[str, float]:
    """A box as documents store it: fractions of the image, rounded to 5 places (the shape of
    Rekognition's BoundingBox, lower-cased)."""
    return {
        "left": round(left, 5),
        "top": round(top, 5),
        "width": round(width, 5),
        "height": round(height, 5),
    }
