"""TextAnalyzer (RapidOCR, bundled PP-OCRv6 models) on images whose text is known.

Text is rendered with Pillow: DejaVu (Debian ``fonts-dejavu-core``) when installed, otherwise the
TrueType font Pillow itself ships (``ImageFont.load_default(size=...)``, Pillow >= 10.1), so the
tests need nothing beyond the project's test install. Real photos come from scikit-image.
"""

from __future__ import annotations

import io
import re
import socket
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rapidocr
import skimage.data as skdata
from PIL import Image, ImageDraw, ImageFont

from conftest import BrokenRuntime
from imagedex.documents import SearchQuery
from imagedex.errors import RecognitionError
from imagedex.recognition.base import Analysis, AnalyzerInput, Recognizer
from imagedex.recognition.ocr import (
    OcrResult,
    TextAnalyzer,
    TextLine,
    bundled_model_paths,
    reading_order,
)

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")


def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = FONT_DIR / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")
    if path.is_file():
        return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)  # Pillow's bundled TrueType font


def norm(text: str) -> str:
    """Upper-case, punctuation dropped, runs of spaces collapsed."""
    return " ".join(re.sub(r"[^0-9A-Z]+", " ", text.upper()).split())


def joined(lines: list[str]) -> str:
    return norm(" ".join(lines))


def sign_image() -> Image.Image:
    """White bold "OPEN 24 HOURS" on a red sign with a dark frame (wider than the gate side)."""
    image = Image.new("RGB", (900, 320), (40, 40, 40))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((20, 20, 880, 300), radius=30, fill=(200, 25, 30))
    draw.text((450, 160), "OPEN 24 HOURS", font=font(84, bold=True), fill="white", anchor="mm")
    return image


PARAGRAPH = [
    "The quick brown fox jumps",
    "over the lazy dog near the",
    "river bank every morning",
]


def paragraph_image() -> Image.Image:
    image = Image.new("RGB", (1000, 420), (250, 248, 240))
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(PARAGRAPH):
        draw.text((60, 60 + row * 110), line, font=font(56), fill=(20, 20, 20))
    return image


def coffee_with_text() -> Image.Image:
    image = Image.fromarray(skdata.coffee()).convert("RGB")  # 600x400
    draw = ImageDraw.Draw(image)
    draw.text(
        (300, 40),
        "FRESH COFFEE",
        font=font(54, bold=True),
        fill="white",
        anchor="mt",
        stroke_width=3,
        stroke_fill="black",
    )
    return image


@pytest.fixture(scope="module")
def analyzer() -> TextAnalyzer:
    return TextAnalyzer()


# --------------------------------------------------------------------- no model needed


def test_reading_order_rows_then_columns() -> None:
    def line(text: str, left: int, top: int, right: int, bottom: int) -> TextLine:
        return TextLine(text=text, score=1.0, box=(left, top, right, bottom))

    lines = [
        line("row2-right", 300, 104, 400, 130),
        line("row1-right", 310, 12, 420, 40),
        line("row2-left", 10, 100, 120, 126),
        line("row1-left", 5, 10, 150, 38),
        line("row3", 20, 200, 200, 230),
    ]
    assert [ln.text for ln in reading_order(lines)] == [
        "row1-left",
        "row1-right",
        "row2-left",
        "row2-right",
        "row3",
    ]
    assert reading_order([]) == []


def test_rejects_bad_settings() -> None:
    with pytest.raises(ValueError):
        TextAnalyzer(min_score=1.5)
    with pytest.raises(ValueError):
        TextAnalyzer(max_side=640, gate_side=800)
    with pytest.raises(ValueError):
        TextAnalyzer(threads=0)


def test_models_are_the_ones_bundled_in_rapidocr() -> None:

    root = Path(rapidocr.__file__).resolve().parent
    paths = bundled_model_paths()
    assert set(paths) == {"det", "rec", "cls"}
    for path in paths.values():
        assert path.is_file() and path.suffix == ".onnx"
        assert root in path.parents


def test_engine_failure_becomes_recognition_error() -> None:
    ocr = TextAnalyzer()
    ocr._engine.set(BrokenRuntime("onnxruntime exploded"))
    with pytest.raises(RecognitionError, match="exploded"):
        ocr.analyze([sign_image()])


def test_empty_image_is_a_clear_error(analyzer: TextAnalyzer) -> None:
    with pytest.raises(RecognitionError, match="empty"):
        analyzer.analyze([Image.new("RGB", (0, 0))])


# --------------------------------------------------------------------- with the models


def test_loads_and_reads_without_any_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh analyzer, with sockets and rapidocr's downloader disabled, still reads."""
    from rapidocr.utils import download_file

    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("OCR tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(download_file.DownloadFile, "run", classmethod(no_network))
    ocr = TextAnalyzer()
    assert isinstance(ocr, Recognizer)
    assert ocr.name == "ocr" and ocr.version
    (analysis,) = ocr.analyze([sign_image()])
    assert isinstance(analysis, Analysis)
    assert "OPEN 24 HOURS" in joined(analysis.text)
    assert analysis.labels == [] and analysis.faces == [] and analysis.embedding is None


def test_sign(analyzer: TextAnalyzer) -> None:
    result = analyzer.read(sign_image())
    assert result.recognized and result.gate_boxes is not None and result.gate_boxes >= 1
    assert [norm(t) for t in result.text] == ["OPEN 24 HOURS"]
    (line,) = result.lines
    assert line.score >= analyzer.min_score
    left, top, right, bottom = line.box
    # drawn centred at (450, 160) inside the 900x320 sign
    assert 40 < left < 450 < right < 860 and 60 < top < 160 < bottom < 260
    (region,) = result.text_regions
    assert region["text"] == line.text and region["box"] == list(line.box)


def test_paragraph_lines_in_reading_order(analyzer: TextAnalyzer) -> None:
    (analysis,) = analyzer.analyze([paragraph_image()])
    assert [norm(t) for t in analysis.text] == [norm(t) for t in PARAGRAPH]


def test_text_composited_on_a_photo(analyzer: TextAnalyzer) -> None:
    result = analyzer.read(coffee_with_text())
    assert result.recognized
    assert "FRESH COFFEE" in joined(result.text)


def test_real_photo_of_a_printed_page(analyzer: TextAnalyzer) -> None:
    """skimage.data.page(): a photographed, unevenly lit textbook page (384x191, grayscale)."""
    (analysis,) = analyzer.analyze([Image.fromarray(skdata.page())])
    text = joined(analysis.text)
    assert norm(analysis.text[0]) == "REGION BASED SEGMENTATION"
    for phrase in ("MARKERS OF THE COINS", "EXTREME PARTS", "HISTOGRAM OF GREY VALUES"):
        assert phrase in text


def test_handwriting_photo_is_detected_as_text(analyzer: TextAnalyzer) -> None:
    """skimage.data.text(): handwritten maths on paper; the detector must see text there."""
    assert analyzer.text_boxes(Image.fromarray(skdata.text())) >= 1


@pytest.mark.parametrize("name", ["astronaut", "hubble_deep_field", "rocket"])
def test_photos_without_text_are_skipped_by_the_gate(analyzer: TextAnalyzer, name: str) -> None:
    image = Image.fromarray(getattr(skdata, name)())
    assert max(image.size) > analyzer.gate_side  # so the gate applies
    result = analyzer.read(image)
    assert result == OcrResult(lines=[], recognized=False, gate_boxes=0)


@pytest.mark.parametrize("name", ["chelsea", "coffee"])
def test_photos_without_text_yield_no_lines(analyzer: TextAnalyzer, name: str) -> None:
    (analysis,) = analyzer.analyze([Image.fromarray(getattr(skdata, name)())])
    assert analysis.text == []


def test_small_photo_without_text_skips_recognition(analyzer: TextAnalyzer) -> None:
    """chelsea (451x300) is below the gate side: the full pipeline's detection finds nothing."""
    result = analyzer.read(Image.fromarray(skdata.chelsea()))
    assert result == OcrResult(lines=[], recognized=False, gate_boxes=0)


def test_min_score_filters_lines() -> None:
    loose = TextAnalyzer(min_score=0.0).read(Image.fromarray(skdata.text()))
    assert any(line.score < 0.95 for line in loose.lines)  # the filter has work to do
    strict = TextAnalyzer(min_score=0.95).read(Image.fromarray(skdata.text()))
    assert all(line.score >= 0.95 for line in strict.lines)
    assert {ln.text for ln in strict.lines} < {ln.text for ln in loose.lines}


def test_batch_keeps_order(analyzer: TextAnalyzer) -> None:
    images = [sign_image(), Image.fromarray(skdata.chelsea()), paragraph_image()]
    results = analyzer.analyze(images)
    assert len(results) == 3
    assert joined(results[0].text) == "OPEN 24 HOURS"
    assert results[1].text == []
    assert joined(results[2].text).startswith("THE QUICK BROWN FOX")
    assert analyzer.analyze([]) == []


def test_tiny_image(analyzer: TextAnalyzer) -> None:
    for size in [(1, 1), (3, 200), (200, 2)]:
        (analysis,) = analyzer.analyze([Image.new("RGB", size, (255, 255, 255))])
        assert analysis.text == []


def test_huge_image_boxes_in_original_pixels(analyzer: TextAnalyzer) -> None:
    """6000x4000: processed at max_side, boxes mapped back to the input's pixels."""
    image = Image.new("RGB", (6000, 4000), (235, 235, 225))
    draw = ImageDraw.Draw(image)
    draw.text((1000, 1500), "MAIN STREET", font=font(400, bold=True), fill=(10, 40, 120))
    result = analyzer.read(image)
    assert [norm(t) for t in result.text] == ["MAIN STREET"]
    left, top, right, bottom = result.lines[0].box
    assert 800 < left < 1200 and 1400 < top < 1700 and 3000 < right < 4500 and bottom < 2200


def test_other_modes(analyzer: TextAnalyzer) -> None:
    sign = sign_image()
    for image in (sign.convert("L"), sign.convert("RGBA"), sign.convert("P"), sign.convert("1")):
        (analysis,) = analyzer.analyze([image])
        assert joined(analysis.text) == "OPEN 24 HOURS", image.mode


def test_concurrent_calls_share_one_instance(analyzer: TextAnalyzer) -> None:
    images = [sign_image(), paragraph_image()]
    expected = [a.text for a in analyzer.analyze(images)]
    results: dict[int, list[list[str]]] = {}
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            results[index] = [a.text for a in analyzer.analyze(images)]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(results[i] == expected for i in range(3))


def test_grayscale_photo_array(analyzer: TextAnalyzer) -> None:
    """A 2-D uint8 array turned into an "L" image, like a decoder would give for grayscale."""
    gray = np.asarray(paragraph_image().convert("L"))
    (analysis,) = analyzer.analyze([Image.fromarray(gray)])
    assert len(analysis.text) == 3


# --------------------------------------------------------------------- the detail pass

SMALL_PRINT = ["PLATFORM 3 TO LONDON BRIDGE", "Fresh coffee and pastries"]


def _dejavu(size: int) -> ImageFont.FreeTypeFont:
    import matplotlib

    return ImageFont.truetype(
        str(Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans.ttf"), size
    )


def large_photo_with_small_print() -> bytes:
    """A 4000x3000 JPEG (the coffee photo blown up) with a notice of two 18 px lines."""
    image = Image.fromarray(skdata.coffee()).convert("RGB").resize((4000, 3000), Image.BICUBIC)
    draw = ImageDraw.Draw(image)
    draw.rectangle((1400, 1900, 2600, 2100), fill=(245, 245, 235))
    for row, line in enumerate(SMALL_PRINT):
        draw.text((1450, 1930 + 80 * row), line, font=_dejavu(18), fill=(10, 10, 10))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def test_small_print_on_a_large_photo_is_read_from_the_original(analyzer: TextAnalyzer) -> None:
    from imagedex.ingest.imaging import decode_image
    from imagedex.ingest.pipeline import DECODE_SIZE

    data = large_photo_with_small_print()
    copy = decode_image(data, draft_size=DECODE_SIZE).image  # what the worker hands analyzers
    assert max(copy.size) <= 640
    (alone,) = analyzer.analyze([copy])
    assert joined(alone.text) == ""  # 18 px is ~2 px in the worker's copy
    (detailed,) = analyzer.analyze([AnalyzerInput(copy, original=data)])
    assert joined(detailed.text) == joined(SMALL_PRINT)
    result = analyzer.read(copy, data)
    scale = copy.width / 4000
    for line in result.lines:  # boxes in the copy's pixels, on the notice
        left, top, right, bottom = line.box
        assert 1400 * scale - 2 <= left < right <= 2600 * scale + 2
        assert 1900 * scale - 2 <= top < bottom <= 2100 * scale + 2


def test_detail_pass_needs_a_larger_original(analyzer: TextAnalyzer) -> None:
    sign = sign_image()
    buffer = io.BytesIO()
    sign.save(buffer, "PNG")
    # the original is no larger than the image: read as before, the bytes are not decoded
    assert analyzer.read(sign, buffer.getvalue()).text == analyzer.read(sign).text
    # an unreadable original falls back to the image itself
    assert norm(" ".join(analyzer.read(sign, b"not an image").text)) == "OPEN 24 HOURS"
    with pytest.raises(ValueError):
        TextAnalyzer(max_side=1280, detail_side=1000)


def test_worker_pipeline_hands_the_original_to_ocr(tmp_path: Path) -> None:
    from imagedex.config import Settings
    from imagedex.ingest.upload import upload_bytes
    from imagedex.ingest.worker import Worker
    from imagedex.services import Services

    settings = Settings(data_dir=tmp_path, recognizers="ocr", semantic=False)
    services = Services.from_settings(settings)
    upload_bytes(services, "notice.jpg", large_photo_with_small_print())
    Worker(services).run(once=True)
    (doc,) = services.index.search(SearchQuery(text="london")).documents
    assert joined(doc.text) == joined(SMALL_PRINT)
    assert doc.analyzed_with["ocr"] == TextAnalyzer.version


def test_wide_gate_finds_print_the_480_px_gate_misses(analyzer: TextAnalyzer) -> None:
    """14 px print on a text-free photo: invisible to the gate on the worker's copy (v2 read
    nothing), found by the gate on a ~1024 px decode of the original and read (v3)."""
    from imagedex.ingest.imaging import decode_image
    from imagedex.ingest.pipeline import DECODE_SIZE

    image = Image.fromarray(skdata.rocket()).convert("RGB").resize((4000, 3000), Image.BICUBIC)
    draw = ImageDraw.Draw(image)
    draw.rectangle((1400, 1900, 2600, 2054), fill=(245, 245, 235))
    for row, line in enumerate(SMALL_PRINT):
        draw.text((1450, 1930 + 56 * row), line, font=_dejavu(14), fill=(10, 10, 10))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92)
    data = buffer.getvalue()
    copy = decode_image(data, draft_size=DECODE_SIZE).image
    assert analyzer.text_boxes(copy) == 0  # the old gate, on the 480 px copy, sees nothing
    old = TextAnalyzer(wide_gate_side=480)  # no wide gate: v2's behaviour
    assert old.read(copy, data).text == []
    result = analyzer.read(copy, data)
    assert result.gate_boxes and result.gate_boxes > 0
    assert joined(result.text) == joined(SMALL_PRINT)
    with pytest.raises(ValueError):
        TextAnalyzer(wide_gate_side=2000)
