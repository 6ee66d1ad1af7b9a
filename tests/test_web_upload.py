"""The upload page in a real browser (Debian chromium through Playwright) against a real
`imagedex up` with its worker: a file the worker dead-letters shows the reason, not "queued"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from test_browser import Server, start_server, stop_server

REASON_TIMEOUT_MS = 60_000  # a dead letter is written as soon as the worker fetches the file
INDEXING_TIMEOUT_MS = 180_000  # the good photo waits for the model to load


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(
        tmp_path_factory.mktemp("web-upload") / "data", [], IMAGEDEX_RECOGNIZERS="imagenet"
    )
    yield running
    stop_server(running)


def test_a_dead_lettered_upload_shows_its_reason(
    server: Server, browser: Browser, photo_dir: Path, tmp_path: Path
) -> None:
    good = photo_dir / "coffee.jpg"
    truncated = tmp_path / "broken.jpg"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(server.url + "/upload")
        page.set_input_files("#file-input", [str(truncated), str(good)])
        broken = page.locator("#uploads .upload", has_text="broken.jpg")
        expect(broken).to_have_attribute("data-state", "error", timeout=REASON_TIMEOUT_MS)
        expect(broken.locator(".status")).to_contain_text("failed:")
        expect(broken.locator(".status")).to_contain_text("truncated")
        fine = page.locator("#uploads .upload", has_text="coffee.jpg")
        expect(fine).to_have_attribute("data-state", "indexed", timeout=INDEXING_TIMEOUT_MS)
        expect(fine.locator(".name a")).to_have_attribute(
            "href", f"/images/{fine.get_attribute('data-id')}"
        )
    finally:
        page.close()
    assert not errors, errors
    dead = server.api("/api/queue")["dead_letters"]
    assert len(dead) == 1 and "truncated" in dead[0]["error"]
