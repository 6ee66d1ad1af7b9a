"""The web app in a real browser (Debian chromium through Playwright) against a real
`imagedex up` (API + worker + the default recognizers) on 127.0.0.1.

On failure each test leaves a screenshot in test-artifacts/.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, Route, expect, sync_playwright

from cli_helpers import cli_json, free_port, imagedex_env, start_up
from conftest import CHROMIUM, CHROMIUM_ARGS

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PRELOADED = ("chelsea.jpg", "coffee.jpg", "china.jpg", "rocket.jpg", "astronaut.jpg")
# the default analyzers plus faces and people, so that the image page has boxes to draw
RECOGNIZERS = "imagenet,moderation,faces,people"
INDEXING_TIMEOUT_MS = 180_000  # the first upload waits for the worker to load its models


@dataclass
class Server:
    url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path

    def api(self, path: str, **params: Any) -> Any:
        response = httpx.get(self.url + path, params=params, timeout=30)
        response.raise_for_status()
        return response.json()


def start_server(data_dir: Path, photos: list[Path], *extra: str, **env_extra: str) -> Server:
    env = imagedex_env(data_dir, **env_extra)
    if photos:
        staged = data_dir.parent / "staged"
        staged.mkdir(exist_ok=True)
        for photo in photos:
            shutil.copy(photo, staged / photo.name)
        outcome = cli_json(env, "ingest", str(staged), "--wait")
        assert outcome["indexed"] == len(photos), outcome
    port = free_port()
    log = data_dir.parent / "server.log"
    process = start_up(env, port, *extra, output=log.open("wb"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, f"imagedex up exited:\n{log.read_text()}"
        try:
            if httpx.get(url + "/api/session", timeout=2).status_code == 200:
                return Server(url, env, process, log)
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"imagedex up did not start:\n{log.read_text()}"
        time.sleep(0.2)


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="module")
def server(photo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("web")
    running = start_server(
        root / "data", [photo_dir / name for name in PRELOADED], IMAGEDEX_RECOGNIZERS=RECOGNIZERS
    )
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield chromium
    chromium.close()


def _page(browser: Browser, request: pytest.FixtureRequest, **options: Any) -> Iterator[Page]:
    context = browser.new_context(accept_downloads=True, **options)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    failed_before = request.session.testsfailed
    yield page
    # the call phase's report is logged before fixtures tear down: a failure shows here
    if request.session.testsfailed > failed_before:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    yield from _page(browser, request, viewport={"width": 1280, "height": 900})


@pytest.fixture
def phone(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    yield from _page(
        browser,
        request,
        viewport={"width": 360, "height": 740},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )


def card_titles(page: Page) -> list[str]:
    return page.locator("#results .card-title").all_inner_texts()


def wait_for_results(page: Page) -> None:
    expect(page.locator("#result-status")).to_have_text(re.compile(r"match"))
    expect(page.locator("main")).not_to_have_attribute("aria-busy", "true")


def query_of(page: Page) -> str:
    return parse_qs(urlsplit(page.url).query).get("q", [""])[0]


def test_upload_through_the_page_then_it_appears_in_the_grid(
    server: Server, page: Page, photo_dir: Path
) -> None:
    page.goto(server.url + "/upload")
    page.set_input_files("#file-input", str(photo_dir / "puppy.jpg"))
    row = page.locator("#uploads .upload", has_text="puppy.jpg")
    expect(row).to_have_count(1)
    expect(row.locator("progress")).to_have_attribute("value", "100")
    expect(row).to_have_attribute("data-state", "indexed", timeout=INDEXING_TIMEOUT_MS)
    doc_id = row.get_attribute("data-id")
    assert doc_id and server.api(f"/api/images/{doc_id}")["title"] == "puppy.jpg"

    # several files dropped at once: each has its own row; a non-image is refused with the reason
    transfer = page.evaluate_handle(
        """async (id) => {
            const photo = await (await fetch(`/api/images/${id}/content`)).blob();
            const dt = new DataTransfer();
            dt.items.add(new File([photo], "dropped.jpg", {type: "image/jpeg"}));
            dt.items.add(new File(["just words"], "notes.txt", {type: "text/plain"}));
            return dt;
        }""",
        doc_id,
    )
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": transfer})
    dropped = page.locator("#uploads .upload", has_text="dropped.jpg")
    refused = page.locator("#uploads .upload", has_text="notes.txt")
    expect(refused).to_have_attribute("data-state", "error")
    expect(refused.locator(".status")).to_contain_text("not a supported image type")
    expect(dropped).to_have_attribute("data-state", "indexed", timeout=INDEXING_TIMEOUT_MS)
    expect(page.locator("#uploads .upload")).to_have_count(3)

    row.locator(".name a").click()
    expect(page).to_have_url(f"{server.url}/images/{doc_id}")
    expect(page.locator("#image-title")).to_have_text("puppy.jpg")

    page.goto(server.url + "/search")
    wait_for_results(page)
    assert "puppy.jpg" in card_titles(page)
    thumb = page.locator(f'#results a[data-id="{doc_id}"] img')
    assert re.search(r"/thumbnail\?size=320&v=[0-9a-f]{8}$", thumb.get_attribute("src") or "")
    assert thumb.get_attribute("loading") == "lazy"
    expect(thumb).to_have_js_property("complete", True)
    assert thumb.evaluate("img => img.naturalWidth") > 0


def test_search_by_label_then_confidence_and_back(server: Server, page: Page) -> None:
    chelsea = server.api("/api/search", q="chelsea")["hits"][0]
    cat = next(lb for lb in chelsea["labels"] if lb["label"] == "Cat")
    assert cat["confidence"] < 100, "the slider's top (100) must exclude the cat"

    page.goto(server.url + "/search")
    box = page.get_by_label("Search images")
    box.fill("label:cat")
    box.press("Enter")
    expect(page).to_have_url(re.compile(r"q=label%3Acat$"))
    wait_for_results(page)
    assert card_titles(page) == ["chelsea.jpg"]
    # facets count each result's most specific label (the breed), not the searched parent
    facets = server.api("/api/search", q="label:cat", facets="true")["facets"]["labels"]
    leaf = facets[0]["label"]
    assert leaf != "Cat" and "Cat" not in {f["label"] for f in facets}
    expect(page.locator(f".facet[data-label='{leaf}']")).to_have_attribute("aria-pressed", "false")

    # the slider edits the box and the URL: confidence>=100 leaves nothing
    slider = page.get_by_label(re.compile("Minimum confidence"))
    slider.focus()
    slider.press("End")
    expect(box).to_have_value("label:cat confidence>=100")
    expect(page).to_have_url(re.compile(r"q=label%3Acat\+confidence%3E%3D100"))
    expect(page.locator("#result-status")).to_have_text("No images match.")
    expect(page.locator("#search-message")).to_contain_text("lower the minimum confidence")

    box.fill("label:cat confidence>=90")
    expect(page).to_have_url(re.compile(r"confidence%3E%3D90"))
    wait_for_results(page)
    assert card_titles(page) == ["chelsea.jpg"]

    page.go_back()
    expect(box).to_have_value("label:cat confidence>=100")
    expect(page.locator("#result-status")).to_have_text("No images match.")
    page.go_back()
    expect(box).to_have_value("label:cat")
    assert query_of(page) == "label:cat"
    wait_for_results(page)
    assert card_titles(page) == ["chelsea.jpg"]


def test_facets_toggle_label_filters(server: Server, page: Page) -> None:
    page.goto(server.url + "/search?q=label:food")
    wait_for_results(page)
    expected = {h["title"] for h in server.api("/api/search", q="label:food")["hits"]}
    assert set(card_titles(page)) == expected and "coffee.jpg" in expected
    # facets list the results' most specific labels; one click narrows, a second widens
    leaf = server.api("/api/search", q="label:food", facets="true")["facets"]["labels"][0]["label"]
    facet = page.locator(f".facet[data-label='{leaf}']")
    expect(facet).to_have_attribute("aria-pressed", "false")
    facet.click()
    narrowed = f'label:food label:"{leaf}"' if " " in leaf else f"label:food label:{leaf}"
    box = page.get_by_label("Search images")
    expect(box).to_have_value(narrowed)
    wait_for_results(page)
    only = {h["title"] for h in server.api("/api/search", q=narrowed)["hits"]}
    assert set(card_titles(page)) == only and only <= expected
    expect(page.locator(f".facet[data-label='{leaf}']")).to_have_attribute("aria-pressed", "true")
    page.locator(f".facet[data-label='{leaf}']").click()
    expect(box).to_have_value("label:food")
    wait_for_results(page)
    assert set(card_titles(page)) == expected


def test_image_page_lists_labels_with_the_description_as_alt(server: Server, page: Page) -> None:
    page.goto(server.url + "/search?q=chelsea")
    wait_for_results(page)
    page.locator("#results .card-link", has_text="chelsea.jpg").click()
    expect(page).to_have_url(re.compile(r"/images/[0-9a-f]{32}$"))
    doc = server.api("/api/images/" + page.url.rsplit("/", 1)[1])
    expect(page.locator("#image-title")).to_have_text("chelsea.jpg")
    picture = page.locator("#picture")
    assert doc["description"] and picture.get_attribute("alt") == doc["description"]
    expect(page.locator("#description")).to_have_text(doc["description"])
    listed = page.locator("#labels .label-row").evaluate_all(
        "rows => rows.map(r => r.dataset.label)"
    )
    by_confidence = sorted(doc["labels"], key=lambda lb: -lb["confidence"])
    assert listed == [lb["label"] for lb in by_confidence] and "Cat" in listed
    cat = page.locator("#labels .label-row[data-label='Cat']")
    expect(cat.locator(".number")).to_have_text(
        f"{next(lb for lb in doc['labels'] if lb['label'] == 'Cat')['confidence']:.1f}%"
    )
    expect(cat.locator(".parents")).to_contain_text("Mammal")
    expect(page.locator("#moderation-state")).to_contain_text("Safe")
    expect(page.locator("#metadata")).to_contain_text(f"{doc['width']} × {doc['height']} px")
    link = page.locator("#original-link")
    expect(link).to_have_attribute("href", re.compile(r"/api/images/[0-9a-f]{32}/content"))
    assert httpx.get(link.get_attribute("href") or "", timeout=10).status_code == 200

    cat.locator(".label-name").click()
    expect(page).to_have_url(re.compile(r"/search\?q=label%3ACat$"))
    wait_for_results(page)
    assert "chelsea.jpg" in card_titles(page)


def _numbers(svg: Any, selector: str) -> dict[str, int]:
    marks = svg.locator(selector).evaluate_all(
        "els => els.map(e => [e.dataset.label, Number(e.dataset.value)])"
    )
    return {label: value for label, value in marks}


def _texts(svg: Any) -> dict[str, str]:
    values = svg.locator("text.value").evaluate_all(
        "els => els.map(e => [e.dataset.label, e.textContent])"
    )
    return {label: text for label, text in values}


def test_dashboard_charts_show_the_api_counts(server: Server, page: Page) -> None:
    page.goto(server.url + "/dashboard")
    expect(page.locator("#dash-status")).to_contain_text("images in the dashboard")
    data = server.api("/api/dashboard")
    expect(page.locator("#dash-status")).to_have_text(
        f"{data['total']} images in the dashboard's range."
    )

    top = {row["label"]: row["count"] for row in data["top_labels"]}
    assert top
    bars = page.locator("#panel-top-labels svg.chart")
    assert _numbers(bars, "rect.bar") == top
    assert _texts(bars) == {label: str(count) for label, count in top.items()}
    cloud = page.locator("#panel-tag-cloud svg.chart")
    assert _numbers(cloud, "text.tag") == top

    confidence = page.locator("#panel-confidence svg.chart")
    expected_buckets = {f"{b['low']}–{b['high']}": b["count"] for b in data["confidence"]}
    assert _numbers(confidence, "rect.bar") == expected_buckets
    # every image with a label (one may have none above the floor) is in one bucket
    hits = server.api("/api/search", limit=100)["hits"]
    assert len(hits) == data["total"]
    assert sum(expected_buckets.values()) == sum(1 for h in hits if h["labels"])

    over_time = page.locator("#panel-over-time svg.chart")
    assert _numbers(over_time, "circle.point") == {
        b["start"]: b["count"] for b in data["over_time"]
    }
    moderation = page.locator("#panel-moderation svg.chart").first
    shown = _numbers(moderation, ".slice")
    assert shown == {k: data["moderation"][k] for k in ("safe", "unsafe") if data["moderation"][k]}
    queue = page.locator("#panel-ingest svg.chart").first
    assert _numbers(queue, "text.stat")["dead letters"] == data["ingest"]["dead_letters"]
    assert (
        _numbers(queue, "text.stat")["indexed last hour"]
        == (data["ingest"]["throughput"]["last_hour"])
    )
    assert "title" in bars.evaluate("svg => [...svg.children].map(c => c.tagName).join()")

    # a label in a chart goes to its search
    first = data["top_labels"][0]["label"]
    page.locator(f"#panel-top-labels a.chart-link:has(rect[data-label='{first}'])").click()
    expect(page).to_have_url(re.compile(r"/search\?q=label%3A"))
    assert query_of(page) == f'label:"{first}"' if " " in first else f"label:{first}"
    wait_for_results(page)
    assert len(card_titles(page)) == data["top_labels"][0]["count"]


def test_dashboard_filters_and_exports(server: Server, page: Page) -> None:
    page.goto(server.url + "/dashboard")
    expect(page.locator("#dash-status")).to_contain_text("images")
    page.get_by_label("Filter", exact=True).fill("label:food")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"/dashboard\?q=label%3Afood$"))
    filtered = server.api("/api/dashboard", q="label:food")
    expect(page.locator("#dash-status")).to_have_text(
        f"{filtered['total']} image{'s' if filtered['total'] != 1 else ''} in the dashboard's range."
    )
    assert filtered["total"] < server.api("/api/dashboard")["total"]
    bars = page.locator("#panel-top-labels svg.chart")
    assert _numbers(bars, "rect.bar") == {r["label"]: r["count"] for r in filtered["top_labels"]}

    with page.expect_download() as png_download:
        page.get_by_role("button", name="Download Top labels as PNG").click()
    png = Path(png_download.value.path()).read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert int.from_bytes(png[16:20], "big") == 2 * 560  # drawn at twice the chart's width

    csv_link = page.get_by_role("link", name="Download Top labels data as CSV")
    href = csv_link.get_attribute("href") or ""
    assert href.startswith("/api/dashboard/top_labels.csv?") and "q=label%3Afood" in href
    with page.expect_download() as csv_download:
        csv_link.click()
    rows = Path(csv_download.value.path()).read_text().splitlines()
    assert rows[0].lower().startswith("label") and len(rows) == 1 + len(filtered["top_labels"])


def test_phone_viewport_has_no_horizontal_scroll(server: Server, phone: Page) -> None:
    doc_id = server.api("/api/search", q="coffee")["hits"][0]["id"]
    for path, ready in (
        ("/search", "#results .card"),
        (f"/images/{doc_id}", "#labels"),
        ("/dashboard", "#panel-ingest svg"),
        ("/upload", "#dropzone"),
    ):
        phone.goto(server.url + path)
        expect(phone.locator(ready).first).to_be_visible()
        width = phone.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], f"{path} scrolls sideways: {width}"
    phone.goto(server.url + "/search")
    wait_for_results(phone)
    card = phone.locator("#results .card").first.bounding_box()
    assert card and card["width"] < 360 / 1.5, "phones get at least two columns"


def test_keyboard_reaches_the_search_box_and_the_first_result(server: Server, page: Page) -> None:
    page.goto(server.url + "/search?q=label:food")
    wait_for_results(page)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    focused = []
    for _ in range(60):
        page.keyboard.press("Tab")
        focused.append(
            page.evaluate("document.activeElement.id || document.activeElement.className")
        )
        if focused[-1] == "card-link":
            break
    assert "q" in focused, focused
    assert focused[-1] == "card-link", focused
    assert focused.index("q") < focused.index("card-link")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/images/[0-9a-f]{32}$"))
    expect(page.locator("#image-title")).to_be_visible()


def test_assets_are_cached_and_pages_route_in_the_browser(server: Server) -> None:
    shell = httpx.get(server.url + "/search?q=label:cat", timeout=10)
    assert shell.status_code == 200 and shell.headers["content-type"].startswith("text/html")
    assert shell.headers["cache-control"] == "no-cache"
    assert "script-src 'self'" in shell.headers["content-security-policy"]
    script = re.search(r'src="(/static/v-[0-9a-f]+/app\.js)"', shell.text)
    assert script, shell.text
    app_js = httpx.get(server.url + script.group(1), timeout=10)
    assert app_js.headers["content-type"].startswith("text/javascript")
    assert "immutable" in app_js.headers["cache-control"]
    again = httpx.get(
        server.url + script.group(1), headers={"If-None-Match": app_js.headers["etag"]}
    )
    assert again.status_code == 304 and not again.content
    css = httpx.get(server.url + "/static/style.css", timeout=10)
    assert css.headers["content-type"].startswith("text/css")
    assert css.headers["cache-control"] == "no-cache"
    assert httpx.get(server.url + "/static/..%2Fapi%2Fpages.py").status_code == 404
    assert httpx.get(server.url + "/static/v-0/../../api/pages.py").status_code == 404
    for path in ("/", "/images/abc", "/dashboard", "/upload", "/login"):
        assert httpx.get(server.url + path, timeout=10).text == shell.text


@pytest.fixture(scope="module")
def guarded_server(photo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Authentication on, a worker-less API: only logged-in people see and upload."""
    root = tmp_path_factory.mktemp("web-auth")
    data_dir = root / "data"
    env = imagedex_env(data_dir, IMAGEDEX_AUTH="on")
    data_dir.mkdir(parents=True)
    proc = subprocess.run(
        [sys.executable, "-m", "imagedex.cli.main", "users", "add", "ada", "--role", "editor",
         "--password-stdin"],
        input="correct horse\n", env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    running = start_server(data_dir, [photo_dir / "coffee.jpg"], "--no-worker", IMAGEDEX_AUTH="on")
    yield running
    stop_server(running)


def test_login_then_search_and_upload_with_csrf(
    guarded_server: Server, page: Page, photo_dir: Path
) -> None:
    url = guarded_server.url
    assert httpx.get(url + "/api/search").status_code == 401
    page.goto(url + "/search?q=coffee")
    expect(page).to_have_url(f"{url}/login?next=%2Fsearch%3Fq%3Dcoffee")
    page.get_by_label("Name").fill("ada")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#login-error")).to_have_text("Wrong name or password.")

    page.get_by_label("Password").fill("correct horse")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{url}/search?q=coffee")
    wait_for_results(page)
    assert card_titles(page) == ["coffee.jpg"]
    thumb = page.locator("#results img").first
    expect(thumb).to_have_js_property("complete", True)
    assert thumb.evaluate("img => img.naturalWidth") > 0, "the session cookie reaches thumbnails"
    expect(page.locator("#who")).to_contain_text("ada")

    # an unsafe request from the page carries the CSRF token, so the upload is accepted
    page.get_by_role("link", name="Upload").click()
    page.set_input_files("#file-input", str(photo_dir / "tent.jpg"))
    row = page.locator("#uploads .upload").first
    expect(row).to_have_attribute("data-state", re.compile("queued|indexed"))
    assert re.fullmatch(r"[0-9a-f]{32}", row.get_attribute("data-id") or "")

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login"))
    page.goto(url + "/dashboard")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fdashboard$"))

    # `next` never leaves this origin (`/\evil` is //evil to a URL parser)
    page.goto(url + "/login?next=/%5Cevil.example/")
    page.get_by_label("Name").fill("ada")
    page.get_by_label("Password").fill("correct horse")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{url}/search")


def test_image_page_draws_face_and_person_boxes_over_the_picture(
    server: Server, page: Page
) -> None:
    doc_id = server.api("/api/search", q="astronaut")["hits"][0]["id"]
    doc = server.api(f"/api/images/{doc_id}")
    assert len(doc["faces"]) == 1, "the astronaut's face is found by the face detector"
    person = next(lb for lb in doc["labels"] if lb["label"] == "Person")
    page.goto(f"{server.url}/images/{doc_id}")
    picture = page.locator("#picture")
    expect(picture).to_have_js_property("complete", True)
    faces = page.locator("svg.overlay .face-box rect")
    expect(faces).to_have_count(1)
    shown = picture.bounding_box()
    box = faces.bounding_box()
    assert shown and box
    expected = doc["faces"][0]["bbox"]
    # the overlay follows the displayed size: fractions of the picture, within the outline's
    # width (the box's stroke adds to its bounding box)
    assert abs(box["x"] - (shown["x"] + expected["left"] * shown["width"])) <= 2.5
    assert abs(box["y"] - (shown["y"] + expected["top"] * shown["height"])) <= 2.5
    assert abs(box["width"] - expected["width"] * shown["width"]) <= 2.5
    people = page.locator("svg.overlay .label-box", has_text="Person")
    expect(people).to_have_count(len(person["instances"]))

    page.set_viewport_size({"width": 480, "height": 900})
    smaller = picture.bounding_box()
    box = faces.bounding_box()
    assert smaller and box and smaller["width"] < shown["width"]
    assert abs(box["width"] - expected["width"] * smaller["width"]) <= 2.5

    page.get_by_label(re.compile(r"^Faces")).uncheck()
    expect(faces).to_have_count(0)
    page.get_by_label("Label boxes").uncheck()
    expect(page.locator("svg.overlay rect")).to_have_count(0)


def test_typing_is_debounced_and_older_searches_are_cancelled(server: Server, page: Page) -> None:
    page.goto(server.url + "/search")
    wait_for_results(page)
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "/api/search" in r.url else None)
    box = page.get_by_label("Search images")
    box.press_sequentially("label:coffee", delay=40)  # faster than the 200 ms pause
    expect(page).to_have_url(re.compile(r"q=label%3Acoffee$"))
    wait_for_results(page)
    assert card_titles(page) == ["coffee.jpg"]
    # 12 keystrokes, one search (a stalled keystroke on a busy machine may add one or two)
    assert 1 <= len(sent) <= 3, sent
    # a search still in flight when the next one starts is cancelled, and its answer never shows
    held: list[Route] = []
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url))

    def hold_china(route: Route) -> None:
        if "q=label%3Achina" in route.request.url:
            held.append(route)  # never answered: the page has to give up on it
        else:
            route.continue_()

    page.route("**/api/search?*", hold_china)
    box.fill("label:china")
    for _ in range(100):  # the route handler runs while Playwright waits
        if held:
            break
        page.wait_for_timeout(20)
    assert len(held) == 1
    expect(page.locator("main")).to_have_attribute("aria-busy", "true")
    box.fill("label:coffee")
    wait_for_results(page)
    assert card_titles(page) == ["coffee.jpg"]
    assert any("q=label%3Achina" in url for url in failed), failed
    page.unroute("**/api/search?*")

    # typing on extends the same history entry instead of adding one per pause
    box.press_sequentially(" con", delay=400)
    expect(page).to_have_url(re.compile(r"q=label%3Acoffee\+con$"))
    page.go_back()
    expect(page).to_have_url(server.url + "/search")


def test_more_like_this_semantic_and_error_states(server: Server, page: Page) -> None:
    page.goto(server.url + "/search?q=chelsea")
    wait_for_results(page)
    page.get_by_role("link", name="More like chelsea.jpg").click()
    expect(page).to_have_url(re.compile(r"/search\?like=[0-9a-f]{32}$"))
    expect(page.locator(".like-note")).to_contain_text("Images like chelsea.jpg")
    wait_for_results(page)
    like = parse_qs(urlsplit(page.url).query)["like"][0]
    expected = [h["title"] for h in server.api("/api/search", like=like, limit=24)["hits"]]
    assert card_titles(page) == expected and "chelsea.jpg" not in expected

    page.goto(server.url + "/search?q=a+kitten")
    page.get_by_label("Search by meaning").check()
    expect(page).to_have_url(re.compile(r"semantic=1"))
    wait_for_results(page)
    assert card_titles(page)[0] == "chelsea.jpg"

    page.goto(server.url + "/search?q=after:notadate")
    alert = page.locator("#search-message [role=alert]")
    expect(alert).to_contain_text("not a date")
    expect(alert).to_contain_text("Check the query")
    page.get_by_label("Search images").fill("label:nothing-like-this")
    expect(page.locator("#result-status")).to_have_text("No images match.")
    expect(page.locator("#search-message")).to_contain_text("remove a label filter")


def test_keystrokes_count_up_to_a_bound_and_the_page_says_more_than(
    server: Server, page: Page
) -> None:
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "/api/search" in r.url else None)
    page.goto(server.url + "/search?q=chelsea")
    wait_for_results(page)
    assert sent and all(parse_qs(urlsplit(u).query)["track_total"] == ["10000"] for u in sent)
    # the status line the page writes for an answer whose total is a lower bound
    texts = page.evaluate(
        """async () => {
          const app = document.querySelector('script[type=module]').src;
          const { matchText } = await import(new URL('search.js', app).href);
          return [matchText(10000, true), matchText(10000, false), matchText(1, false)];
        }"""
    )
    assert texts == ["More than 10,000 images match.", "10000 images match.", "1 image matches."]
