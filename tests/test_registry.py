"""Things chosen by name: the registry, and an analyzer added with one class and one line."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from PIL import Image

from conftest import png
from imagedex.config import Settings
from imagedex.documents import ImageDocument, Label, SearchQuery
from imagedex.errors import ConfigError, RecognitionError
from imagedex.ingest.upload import upload_bytes
from imagedex.ingest.worker import Worker
from imagedex.recognition import ANALYZERS
from imagedex.recognition.base import Analysis, Analyzer, AnalyzerInput, Recognizer
from imagedex.registry import Registry, UnknownNameError
from imagedex.services import Services, build_recognizers


class BrightnessAnalyzer(Analyzer):
    """The toy: labels an image Bright or Dark, and records where it came from."""

    name = "brightness"
    version = "1"
    reads_original = True
    seen: ClassVar[list[tuple[str | None, int]]] = []

    def analyze_inputs(self, inputs: Sequence[AnalyzerInput]) -> list[Analysis]:
        results = []
        for item in inputs:
            original = item.original()
            self.seen.append((item.location, len(original or b"")))
            mean = float(np.asarray(item.image.convert("L")).mean())
            label = "Bright" if mean >= 128 else "Dark"
            results.append(Analysis(labels=[Label(label, 90.0, ("Lighting",))]))
        return results


@pytest.fixture
def toy_registered() -> Iterator[None]:
    ANALYZERS.register("brightness", BrightnessAnalyzer)  # the one registration line
    BrightnessAnalyzer.seen.clear()
    yield
    ANALYZERS.unregister("brightness")


def test_a_toy_analyzer_runs_through_the_pipeline(tmp_path: Path, toy_registered: None) -> None:
    settings = Settings(data_dir=tmp_path, recognizers="brightness", semantic=False)
    services = Services.from_settings(settings)
    try:
        white, black = png((250, 250, 250)), png((5, 5, 5))
        upload_bytes(services, "white.png", white)
        upload_bytes(services, "black.png", black)
        Worker(services).run(once=True)
        bright = services.index.search(SearchQuery(labels=["bright"])).documents
        lighting = services.index.search(SearchQuery(labels=["lighting"])).documents
        assert [d.title for d in bright] == ["white.png"]
        assert {d.title for d in lighting} == {"white.png", "black.png"}
        assert bright[0].analyzed_with == {"brightness": "1"}
        # the analyzer saw each object's location and its original bytes
        assert sorted(BrightnessAnalyzer.seen) == sorted(
            [
                (services.store.location("white.png"), len(white)),
                (services.store.location("black.png"), len(black)),
            ]
        )
    finally:
        services.close()


def test_plain_images_are_accepted_where_inputs_are_expected(toy_registered: None) -> None:
    (analysis,) = BrightnessAnalyzer().analyze([Image.new("RGB", (4, 4), (255, 255, 255))])
    assert analysis.labels[0].label == "Bright"
    assert BrightnessAnalyzer.seen == [(None, 0)]
    assert isinstance(BrightnessAnalyzer(), Recognizer)


def test_a_lazy_original_is_fetched_once_and_only_when_asked() -> None:
    calls: list[int] = []

    def fetch() -> bytes:
        calls.append(1)
        return b"original"

    item = AnalyzerInput(Image.new("RGB", (1, 1)), "file:///x", fetch)
    assert calls == []
    assert item.original() == b"original" and item.original() == b"original"
    assert calls == [1]


def test_an_analyzer_returning_the_wrong_count_is_an_error() -> None:
    class Short(Analyzer):
        name = "short"
        version = "1"

        def analyze_images(self, images: Sequence[Image.Image]) -> list[Analysis]:
            return []

    with pytest.raises(RecognitionError, match="returned 0 results for 1"):
        Short().analyze([Image.new("RGB", (1, 1))])


def test_an_unknown_analyzer_names_the_valid_ones_and_the_nearest(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, recognizers="imagenet,imagenett")
    with pytest.raises(ConfigError) as caught:
        build_recognizers(settings)
    message = str(caught.value)
    assert "unknown analyzer 'imagenett'" in message
    assert "did you mean 'imagenet'" in message
    for name in ("imagenet", "moderation", "faces", "people", "ocr", "rekognition"):
        assert name in message


def test_every_analyzer_has_one_name_everywhere(tmp_path: Path) -> None:
    """The registry name, the settings name and the name in `analyzed_with` are the same."""
    settings = Settings(data_dir=tmp_path, recognizers="imagenet,moderation,faces,people,ocr")
    assert [r.name for r in build_recognizers(settings)] == [
        "imagenet",
        "moderation",
        "faces",
        "people",
        "ocr",
    ]


def test_former_analyzer_names_read_as_the_current_ones() -> None:
    stored = ImageDocument(
        id="x",
        bucket="b",
        key="k",
        title="k",
        s3_location="s3://b/k",
        analyzed_with={"imagenet-mobilenet_v2": "2", "faces-haar": "2"},
        errors={"ocr-rapidocr": "boom"},
    ).to_dict()
    loaded = ImageDocument.from_dict(stored)
    assert loaded.analyzed_with == {"imagenet": "2", "faces": "2"}
    assert loaded.errors == {"ocr": "boom"}


def test_registry_resolves_lazily_and_caches() -> None:
    registry: Registry[object] = Registry("thing")
    registry.register("json", "json:dumps")
    registry.register("missing", "imagedex.no_such_module:thing")
    import json

    assert registry.resolve("json") is json.dumps
    assert registry.names() == ["json", "missing"]
    with pytest.raises(ModuleNotFoundError):
        registry.resolve("missing")  # imported only when asked for
    with pytest.raises(UnknownNameError, match="did you mean 'json'"):
        registry.resolve("jsn")


def test_an_installed_package_adds_an_analyzer_through_an_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real distribution on sys.path (dist-info with entry_points.txt), found by
    importlib.metadata like any pip-installed plugin."""
    (tmp_path / "toy_plugin.py").write_text(
        textwrap.dedent(
            """
            from imagedex.recognition.base import Analysis, Analyzer

            class Plugin(Analyzer):
                name = "plugin"
                version = "7"

                def analyze_images(self, images):
                    return [Analysis() for _ in images]
            """
        )
    )
    dist = tmp_path / "toy_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[imagedex.analyzers]\nplugin = toy_plugin:Plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry: Registry[type[Recognizer]] = Registry("analyzer", "imagedex.analyzers")
    assert "plugin" in registry
    analyzer = registry.resolve("plugin").from_settings(Settings(data_dir=tmp_path))
    assert (analyzer.name, analyzer.version) == ("plugin", "7")
    assert len(analyzer.analyze([Image.new("RGB", (2, 2))])) == 1
    sys.modules.pop("toy_plugin", None)
