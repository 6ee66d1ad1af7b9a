"""The image page in a real browser (Debian chromium through Playwright) against a real
`imagedex up` with logins: near-duplicates linked both ways, the key instead of a server path,
and the Delete button editors get (with a confirmation)."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from cli_helpers import add_users, imagedex_env
from conftest import ColourRecognizer, jpeg
from imagedex.config import load_settings
from imagedex.ingest.upload import upload_bytes
from imagedex.ingest.worker import Worker
from imagedex.services import Services
from test_browser import Server, start_server, stop_server

PASSWORD = "correct horse"


def heic(image: Image.Image) -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    buffer = io.BytesIO()
    image.save(buffer, "HEIF", quality=80)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    """Auth on, an editor and a viewer, four images indexed (two near-duplicates, one HEIC)."""
    from skimage import data

    data_dir = tmp_path_factory.mktemp("web-delete") / "data"
    services = Services.from_settings(load_settings(environ={}, data_dir=data_dir))
    images = {
        "trip/chelsea.jpg": jpeg(data.chelsea(), 92),
        "trip/chelsea-small.jpg": jpeg(data.chelsea(), 60, scale=0.6),
        "trip/coffee.jpg": jpeg(data.coffee(), 92),
    }
    images["phone/astronaut.heic"] = heic(Image.fromarray(data.astronaut()))
    ids = {key: upload_bytes(services, key, image).doc_id for key, image in images.items()}
    Worker(services, recognizers=[ColourRecognizer()]).run(once=True)
    assert services.index.count() == 4
    services.close()
    env = imagedex_env(data_dir, IMAGEDEX_AUTH="on")
    add_users(env, {"ed": "editor", "vi": "viewer"}, PASSWORD)
    server = start_server(data_dir, [], "--no-worker", IMAGEDEX_AUTH="on")
    yield server, ids
    stop_server(server)


def logged_in(browser: Browser, url: str, name: str) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url + "/login")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/search$"))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def viewer(browser: Browser, site: tuple[Server, dict[str, str]]) -> Iterator[Page]:
    yield from logged_in(browser, site[0].url, "vi")


@pytest.fixture
def editor(browser: Browser, site: tuple[Server, dict[str, str]]) -> Iterator[Page]:
    yield from logged_in(browser, site[0].url, "ed")


def status_of(server: Server, doc_id: str, page: Page) -> int:
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    return httpx.get(f"{server.url}/api/images/{doc_id}", cookies=cookies, timeout=10).status_code


def details(page: Page) -> dict[str, str]:
    terms = page.locator("#metadata dt").all_inner_texts()
    return dict(zip(terms, page.locator("#metadata dd").all_inner_texts(), strict=True))


def test_viewers_see_key_and_near_duplicates_both_ways_but_no_delete(
    site: tuple[Server, dict[str, str]], viewer: Page
) -> None:
    server, ids = site
    original, copy = ids["trip/chelsea.jpg"], ids["trip/chelsea-small.jpg"]
    viewer.goto(f"{server.url}/images/{original}")
    expect(viewer.locator("#image-title")).to_have_text("chelsea.jpg")
    meta = details(viewer)
    assert (meta["Bucket"], meta["Key"]) == ("images", "trip/chelsea.jpg")
    assert "Stored at" not in meta
    assert "file://" not in viewer.content() and "/tmp/" not in viewer.locator("main").inner_text()
    duplicates = viewer.locator("#near-duplicates a")
    expect(duplicates).to_have_count(1)
    expect(duplicates).to_have_text("chelsea-small.jpg")
    expect(viewer.locator("#near-duplicates")).to_contain_text(copy)
    expect(viewer.locator("#delete-image")).to_have_count(0)

    duplicates.click()  # the newer copy links back to the older original
    expect(viewer).to_have_url(f"{server.url}/images/{copy}")
    expect(viewer.locator("#image-title")).to_have_text("chelsea-small.jpg")
    expect(viewer.locator("#near-duplicates a")).to_have_text("chelsea.jpg")


def test_editors_delete_after_confirming(site: tuple[Server, dict[str, str]], editor: Page) -> None:
    server, ids = site
    original, copy = ids["trip/chelsea.jpg"], ids["trip/chelsea-small.jpg"]
    editor.goto(f"{server.url}/images/{copy}")
    button = editor.get_by_role("button", name="Delete")
    expect(button).to_be_visible()

    asked: list[str] = []

    def answer(accept: bool) -> Any:
        def handle(dialog: Any) -> None:
            asked.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()

        return handle

    editor.once("dialog", answer(False))
    button.click()
    assert asked and "chelsea-small.jpg" in asked[0] and "for good" in asked[0]
    expect(editor.locator("#image-title")).to_have_text("chelsea-small.jpg")
    assert status_of(server, copy, editor) == 200

    editor.once("dialog", answer(True))
    button.click()
    expect(editor.get_by_role("heading", name="Deleted")).to_be_visible()
    expect(editor.locator("#deleted-status")).to_contain_text("chelsea-small.jpg was removed")
    assert status_of(server, copy, editor) == 404
    bucket = Path(server.env["IMAGEDEX_DATA_DIR"]) / "images" / "trip"
    assert sorted(p.name for p in bucket.iterdir()) == ["chelsea.jpg", "coffee.jpg"]

    editor.get_by_role("link", name="Back to search").click()
    expect(editor).to_have_url(re.compile(r"/search$"))
    editor.goto(f"{server.url}/images/{original}")
    expect(editor.locator("#image-title")).to_have_text("chelsea.jpg")
    expect(editor.locator("#near-duplicates")).to_have_count(0)


def test_a_heic_original_is_shown_through_its_large_thumbnail(
    site: tuple[Server, dict[str, str]], viewer: Page
) -> None:
    # browsers cannot decode HEIC: the page shows the 1280 px thumbnail, made by the server
    server, ids = site
    viewer.goto(f"{server.url}/images/{ids['phone/astronaut.heic']}")
    picture = viewer.locator("#picture")
    expect(picture).to_have_attribute("src", re.compile(r"/thumbnail\?size=1280$"))
    deadline = time.monotonic() + 20
    while not picture.evaluate("img => img.complete") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert picture.evaluate("img => img.naturalWidth") > 0
    assert details(viewer)["Type"] == "image/heic"
