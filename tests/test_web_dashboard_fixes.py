"""Dashboard and search facets in Debian chromium against the real app (uvicorn) over a real
SQLite index of real photos: honest label shares, whole-number axes, labels kept inside their
charts and apart at 390 px, PNG exports that carry their title and filter (read back with the
project's own OCR), facets that follow semantic and "more like this" results, and report and
alert rows whose buttons stay on a phone's screen."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from imagedex.config import load_settings
from imagedex.documents import ImageDocument, Label, document_id
from imagedex.enrich.embedding import TextEmbeddingEnricher
from imagedex.services import Services
from live_app import live_app

DAY0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
# (file, labels (name, confidence, parents), a direction of how it looks, described for meaning)
PHOTOS: list[tuple[str, list[tuple[str, float, tuple[str, ...]]], int, bool]] = [
    ("chelsea.jpg", [("tabby cat", 92.0, ("cat", "animal")), ("grass", 60.0, ())], 0, True),
    ("puppy.jpg", [("golden retriever", 88.0, ("dog", "animal")), ("grass", 55.0, ())], 0, True),
    ("gold_fish.jpg", [("goldfish", 81.0, ("fish", "animal"))], 0, True),
    ("coffee.jpg", [("espresso", 97.0, ("coffee", "beverage"))], 1, False),
    ("astronaut.jpg", [("astronaut", 77.0, ("person",))], 2, False),
    ("rocket.jpg", [("rocket", 85.0, ("vehicle",))], 2, False),
    ("china.jpg", [("pagoda", 66.0, ("building",))], 3, False),
    ("guitar.jpg", [("acoustic guitar", 90.0, ("instrument",))], 3, False),
    ("tent.jpg", [("tent", 73.0, ("shelter",)), ("grass", 52.0, ())], 3, False),
]
ANIMALS = {"chelsea.jpg", "puppy.jpg", "gold_fish.jpg"}


def _documents(services: Services, photo_dir: Path) -> list[ImageDocument]:
    documents = []
    for day, (name, labels, look, _described) in enumerate(PHOTOS):
        data = (photo_dir / name).read_bytes()
        info = services.store.put(f"photos/{name}", data, "image/jpeg")
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
        visual = [0.0] * 8
        visual[look] = 1.0
        visual[7] = 0.05 * day  # near, not identical
        documents.append(
            ImageDocument(
                id=document_id(services.store.bucket, f"photos/{name}"),
                bucket=services.store.bucket,
                key=f"photos/{name}",
                title=name,
                s3_location=services.store.location(f"photos/{name}"),
                etag=info.etag,
                size=len(data),
                content_type="image/jpeg",
                width=width,
                height=height,
                # nine images on nine days: the time axis ends on a labelled day
                ingested_at=(DAY0 - timedelta(days=8 - day)).isoformat().replace("+00:00", "Z"),
                labels=[Label(n, c, p) for n, c, p in labels],
                description=f"a photo of a {labels[0][0]}",
                visual_embedding=visual,
            )
        )
    # only the animals are described for meaning: the others can never be a semantic match
    TextEmbeddingEnricher().enrich([d for d, p in zip(documents, PHOTOS, strict=True) if p[3]])
    return documents


@pytest.fixture(scope="module")
def app(photo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("dash-fixes")
    settings = load_settings(environ={}, data_dir=root / "data", auth="off")
    services = Services.from_settings(settings)
    services.index.upsert(_documents(services, photo_dir))
    with live_app(services) as url:
        yield url
    services.close()


def _page(browser: Browser, width: int) -> Page:
    context = browser.new_context(
        viewport={"width": width, "height": 900}, accept_downloads=True, device_scale_factor=1
    )
    return context.new_page()


def _api(app: str, path: str, **params: Any) -> Any:
    answer = httpx.get(app + path, params=params, timeout=60)
    answer.raise_for_status()
    return answer.json()


def _leaf_counts(hits: list[dict[str, Any]], photos: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for hit in hits:
        for name, _confidence, _parents in photos[hit["title"]]:
            counts[name] = counts.get(name, 0) + 1
    return counts


# -- facets follow semantic and "more like this" results ------------------------------------


def test_facets_count_the_images_like_this_one_not_every_image(app: str) -> None:
    chelsea = _api(app, "/api/search", q="chelsea")["hits"][0]["id"]
    answer = _api(app, "/api/search", like=chelsea, facets="true", limit=100)
    titles = {hit["title"] for hit in answer["hits"]}
    assert titles == ANIMALS - {"chelsea.jpg"}  # the example itself is left out
    facets = answer["facets"]
    assert facets["total"] == answer["total"] == 2
    labels = {row["label"]: row["count"] for row in facets["labels"]}
    by_title = {name: labels for name, labels, _look, _described in PHOTOS}
    assert (
        labels
        == _leaf_counts(answer["hits"], by_title)
        == {
            "golden retriever": 1,
            "grass": 1,
            "goldfish": 1,
        }
    )
    assert sum(b["count"] for b in facets["over_time"]) == 2
    assert facets["counted"] == 2


def test_facets_count_the_semantic_matches(app: str) -> None:
    answer = _api(app, "/api/search", q="a pet animal", semantic="true", facets="true", limit=100)
    assert answer["total"] >= 1
    titles = {hit["title"] for hit in answer["hits"]}
    assert titles <= ANIMALS  # only described images can match by meaning
    labels = {row["label"]: row["count"] for row in answer["facets"]["labels"]}
    by_title = {name: labels for name, labels, _look, _described in PHOTOS}
    assert labels == _leaf_counts(answer["hits"], by_title)
    assert "espresso" not in labels and answer["facets"]["total"] == answer["total"]


def test_the_search_page_facets_follow_more_like_this(app: str, browser: Browser) -> None:
    chelsea = _api(app, "/api/search", q="chelsea")["hits"][0]["id"]
    page = _page(browser, 1280)
    page.goto(f"{app}/search?like={chelsea}")
    expect(page.locator("#results .card")).to_have_count(2)
    facets = page.locator("#facets button.facet")
    expect(facets).to_have_count(3)
    assert sorted(facets.evaluate_all("els => els.map(e => e.dataset.label)")) == [
        "golden retriever",
        "goldfish",
        "grass",
    ]
    page.context.close()


# -- dashboard -------------------------------------------------------------------------------


def _open_dashboard(app: str, browser: Browser, width: int, query: str = "") -> Page:
    page = _page(browser, width)
    page.goto(f"{app}/dashboard" + (f"?q={query}" if query else ""))
    expect(page.locator("#panel-ingest svg.chart").first).to_be_visible()
    return page


def test_label_share_is_the_part_of_the_images_that_show_each_label(
    app: str, browser: Browser
) -> None:
    page = _open_dashboard(app, browser, 1280)
    data = _api(app, "/api/dashboard")
    panel = page.locator("#panel-label-share")
    expect(panel.locator("h2")).to_have_text("Share of images per label")
    assert panel.locator(".slice").count() == 0  # parts of one whole would misstate overlaps
    shown = panel.locator("rect.bar").evaluate_all(
        "els => els.map(e => [e.dataset.label, Number(e.dataset.value)])"
    )
    total = data["total"]
    expected = [
        [row["label"], round(100 * row["count"] / total, 1)] for row in data["top_labels"][:10]
    ]
    assert shown == expected
    grass = next(row for row in data["top_labels"] if row["label"] == "grass")
    assert grass["count"] == 3 and total == 9
    expect(panel.locator("text.value[data-label='grass']")).to_have_text("33% (3)")
    page.context.close()


def _texts(svg: Any) -> list[dict[str, Any]]:
    return svg.evaluate(
        """svg => { const width = svg.viewBox.baseVal.width;
           return [...svg.querySelectorAll('text')].filter(t => t.textContent.trim()).map(t => {
             const b = t.getBBox();
             return {text: t.textContent, x: b.x, y: b.y, w: b.width, h: b.height, width,
                     anchor: t.getAttribute('text-anchor')}; }); }"""
    )


def _overlapping(boxes: list[dict[str, Any]]) -> list[tuple[str, str]]:
    found = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            if (
                a["x"] < b["x"] + b["w"]
                and b["x"] < a["x"] + a["w"]
                and a["y"] < b["y"] + b["h"]
                and b["y"] < a["y"] + a["h"]
            ):
                found.append((a["text"], b["text"]))
    return found


@pytest.mark.parametrize("width", [1280, 390])
def test_axes_count_in_whole_numbers_and_labels_stay_inside_and_apart(
    app: str, browser: Browser, width: int
) -> None:
    page = _open_dashboard(app, browser, width)
    for panel in ("over-time", "confidence", "ingest"):
        for svg in page.locator(f"#panel-{panel} svg.chart").all():
            texts = _texts(svg)
            outside = [
                t["text"] for t in texts if t["x"] < -0.5 or t["x"] + t["w"] > t["width"] + 0.5
            ]
            assert outside == [], f"{panel} at {width}px: cut at the edge: {outside}"
            assert _overlapping(texts) == [], f"{panel} at {width}px: labels overlap"
    for panel in ("over-time", "confidence"):
        svg = page.locator(f"#panel-{panel} svg.chart")
        ticks = [t["text"] for t in _texts(svg) if t["anchor"] == "end"]
        values = [int(t) for t in ticks]  # whole numbers: counts of images
        steps = {b - a for a, b in itertools.pairwise(values)}
        assert values[0] == 0 and len(steps) == 1 and steps.pop() > 0, f"{panel}: ticks {ticks}"
        bars = svg.locator(".bar, .point").evaluate_all(
            "els => els.map(e => Number(e.dataset.value))"
        )
        assert values[-1] >= max(bars)
    # the time axis ends with the newest day, drawn whole
    axis = [t for t in _texts(page.locator("#panel-over-time svg.chart")) if t["text"] == "03-02"]
    assert axis, "the last day has no label"
    page.context.close()


def test_exported_png_carries_the_panel_title_and_the_filter(app: str, browser: Browser) -> None:
    from imagedex.recognition.ocr import TextAnalyzer

    page = _open_dashboard(app, browser, 1280, "label:animal")
    expect(page.locator("#dash-status")).to_have_text("3 images in the dashboard's range.")
    chart = page.locator("#panel-top-labels svg.chart")
    chart_height = int(chart.evaluate("svg => svg.viewBox.baseVal.height"))
    with page.expect_download() as download:
        page.get_by_role("button", name="Download Top labels as PNG").click()
    image = Image.open(download.value.path()).convert("RGB")
    assert image.width == 2 * 560 and image.height > 2 * chart_height  # a heading above it
    heading = image.crop((0, 0, image.width, image.height - 2 * chart_height))
    (lines,) = [a.text for a in TextAnalyzer(gate=False).analyze([heading])]
    read = " ".join(lines).lower()
    assert "top labels" in read and "label:animal" in read.replace(" ", ""), lines
    assert "3 images" in read, lines
    page.context.close()


# -- reports and alerts on a phone -------------------------------------------------------------


def test_report_and_alert_buttons_stay_on_a_phone_screen(app: str, browser: Browser) -> None:
    report = {
        "title": "Animals this week",
        "query": "label:animal",
        "formats": ["pdf", "xlsx"],
        "schedule": "weekly@mon 08:00",
        "timezone": "Europe/Paris",
        "window": "7d",
        "recipients": ["mailto:team@example.org", "webhook:https://example.org/hooks/x"],
    }
    assert httpx.post(f"{app}/api/reports/animals", json=report, timeout=30).status_code == 201
    rule = {"kind": "label", "label": "cat", "actions": ["mailto:ops@example.org"]}
    assert httpx.post(f"{app}/api/alerts/cats", json=rule, timeout=30).status_code == 201
    page = _page(browser, 390)
    for path, row, names in (
        ("/reports", "tr[data-report=animals]", ("History", "Run now", "Delete")),
        ("/alerts", "tr[data-rule=cats]", ("Mute", "Delete")),
    ):
        page.goto(app + path)
        found = page.locator(row)
        expect(found).to_be_visible()
        for name in names:
            box = found.get_by_role("button", name=name, exact=True).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, f"{path} {name}: {box}"
        scroll = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert scroll[0] <= scroll[1], f"{path} scrolls sideways: {scroll}"
    page.context.close()
