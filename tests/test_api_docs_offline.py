"""/docs (Swagger UI) and /redoc (ReDoc) in Debian chromium with every request to another host
refused: the pages come from the package, so they work on a machine without internet."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Page, Route, expect, sync_playwright

from conftest import CHROMIUM, CHROMIUM_ARGS
from imagedex.config import load_settings
from imagedex.services import Services
from live_app import live_app


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = load_settings(environ={}, data_dir=tmp_path_factory.mktemp("docs") / "data")
    services = Services.from_settings(settings)
    with live_app(services) as url:
        yield url
    services.close()


@pytest.fixture
def offline_page(app_url: str) -> Iterator[tuple[Page, list[str], list[str]]]:
    """A page whose requests to any host but the app's fail, as without a network; yields
    it with the refused URLs and the console errors (CSP violations among them)."""
    refused: list[str] = []
    errors: list[str] = []
    here = urlsplit(app_url).netloc

    def only_here(route: Route) -> None:
        if urlsplit(route.request.url).netloc == here or route.request.url.startswith("blob:"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort("internetdisconnected")

    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.route("**/*", only_here)
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        yield page, refused, errors
        browser.close()


def test_swagger_ui_lists_the_operations_without_internet(
    app_url: str, offline_page: tuple[Page, list[str], list[str]]
) -> None:
    page, refused, errors = offline_page
    page.goto(app_url + "/docs")
    search = page.locator(".opblock-get", has_text="/api/search").first
    expect(search).to_be_visible(timeout=20_000)
    assert page.locator(".opblock").count() >= 20
    search.locator(".opblock-summary").click()  # it opens: the UI is live, not a picture
    expect(page.locator(".opblock-get.is-open")).to_contain_text("min_confidence")
    assert refused == [], f"/docs asked other hosts: {refused}"
    assert errors == []


def test_redoc_lists_the_operations_without_internet(
    app_url: str, offline_page: tuple[Page, list[str], list[str]]
) -> None:
    page, refused, errors = offline_page
    page.goto(app_url + "/redoc")
    expect(page.locator("h1", has_text="imagedex")).to_be_visible(timeout=20_000)
    expect(page.get_by_text("/api/search", exact=True).first).to_be_attached()
    assert page.locator("[data-section-id^='tag/']").count() >= 5
    assert refused == [], f"/redoc asked other hosts: {refused}"
    # ReDoc's sidebar hard-codes its maker's logo from their CDN: the page's CSP stops it
    # before any request, and ReDoc hides the image when it does not load
    assert [e for e in errors if "cdn.redoc.ly/redoc/logo-mini.svg" not in e] == []


def test_only_the_three_docs_files_are_served(app_url: str) -> None:
    for name, kind in (
        ("swagger-ui-bundle.js", "text/javascript"),
        ("swagger-ui.css", "text/css"),
        ("redoc.standalone.js", "text/javascript"),
    ):
        answer = httpx.get(f"{app_url}/docs/assets/{name}", timeout=10)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(kind)
        assert len(answer.content) > 100_000
    for name in ("favicon.png", "..%2F__init__.py", "core.py"):
        assert httpx.get(f"{app_url}/docs/assets/{name}", timeout=10).status_code == 404
    page = httpx.get(app_url + "/docs", timeout=10)
    assert (
        "cdn." not in page.text and "connect-src 'self'" in page.headers["content-security-policy"]
    )
