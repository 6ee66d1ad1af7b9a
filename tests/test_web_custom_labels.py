"""The image page's labels in a real browser (Debian chromium through Playwright) against a real
`imagedex up` with logins (issue 16): each label's source; for editors, removing and adding a
label, and teaching a label from one image at a time until it has 3 examples and is applied to
the collection; viewers get none of the controls."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from cli_helpers import add_users, imagedex_env
from imagedex.config import load_settings
from imagedex.services import Services
from test_browser import Server, start_server, stop_server
from test_custom_labels import ingest, labels_of, upload
from test_web_delete import PASSWORD, logged_in


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    """Auth on, an editor and a viewer; five red images and two blue ones, indexed with a
    visual embedding by colour."""
    data_dir = tmp_path_factory.mktemp("web-custom") / "data"
    services = Services.from_settings(load_settings(environ={}, data_dir=data_dir))
    ids = {f"r{n}": upload(services, f"r{n}.png", "red", 5 * n) for n in range(5)}
    ids |= {f"b{n}": upload(services, f"b{n}.png", "blue", 5 * n) for n in range(2)}
    ingest(services)
    assert services.index.count() == 7
    services.close()
    env = imagedex_env(data_dir, IMAGEDEX_AUTH="on")
    add_users(env, {"ed": "editor", "vi": "viewer"}, PASSWORD)
    server = start_server(data_dir, [], "--no-worker", IMAGEDEX_AUTH="on")
    yield server, ids
    stop_server(server)


@pytest.fixture
def viewer(browser: Browser, site: tuple[Server, dict[str, str]]) -> Iterator[Page]:
    yield from logged_in(browser, site[0].url, "vi")


@pytest.fixture
def editor(browser: Browser, site: tuple[Server, dict[str, str]]) -> Iterator[Page]:
    yield from logged_in(browser, site[0].url, "ed")


def row(page: Page, label: str) -> Any:
    return page.locator(f'#labels li.label-row[data-label="{label}"]')


def stored_labels(server: Server, doc_id: str) -> dict[str, float]:
    services = Services.from_settings(
        load_settings(environ={}, data_dir=server.env["IMAGEDEX_DATA_DIR"])
    )
    try:
        return labels_of(services, doc_id)
    finally:
        services.close()


def test_viewers_see_sources_but_no_controls(
    site: tuple[Server, dict[str, str]], viewer: Page
) -> None:
    server, ids = site
    viewer.goto(f"{server.url}/images/{ids['b0']}")
    expect(row(viewer, "blue").locator(".source")).to_have_text("model")
    expect(viewer.locator("#labels .remove-label")).to_have_count(0)
    expect(viewer.locator("#add-label-form")).to_have_count(0)
    expect(viewer.locator("#teach-label-form")).to_have_count(0)


def test_editors_correct_and_teach_from_the_image_page(
    site: tuple[Server, dict[str, str]], editor: Page
) -> None:
    server, ids = site
    editor.goto(f"{server.url}/images/{ids['b1']}")
    expect(row(editor, "blue").locator(".source")).to_have_text("model")

    asked: list[str] = []
    editor.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    editor.get_by_role("button", name="Remove blue").click()
    expect(editor.locator("#removed-labels")).to_have_text("Removed by a person: blue")
    expect(row(editor, "blue")).to_have_count(0)
    assert asked and "for good" in asked[0]
    assert "blue" not in stored_labels(server, ids["b1"])

    editor.get_by_label("Add a label").fill("Sky")
    editor.get_by_role("button", name="Add", exact=True).click()
    expect(row(editor, "Sky").locator(".source")).to_have_text("person")
    expect(row(editor, "Sky")).to_contain_text("100.0%")
    assert stored_labels(server, ids["b1"])["Sky"] == 100.0

    editor.get_by_label("Teach a label from this image").fill("Dog")
    editor.get_by_role("button", name="Teach").click()
    expect(editor.locator("#label-error")).to_contain_text("analyzers already give")

    for n, says in ((1, "1 of 3 examples"), (2, "2 of 3 examples"), (3, "Taught Scarlet from 3")):
        editor.goto(f"{server.url}/images/{ids[f'r{n}']}")
        expect(row(editor, "red")).to_have_count(1)
        editor.get_by_label("Teach a label from this image").fill("Scarlet")
        editor.get_by_role("button", name="Teach").click()
        expect(editor.locator("#label-status")).to_contain_text(says)
        if n < 3:  # collecting: nothing is labelled yet
            assert "Scarlet" not in stored_labels(server, ids[f"r{n}"])

    # applied to the collection in the background: another red image shows it, as taught
    deadline = time.monotonic() + 30
    while True:
        editor.goto(f"{server.url}/images/{ids['r4']}")
        expect(row(editor, "red")).to_have_count(1)
        if row(editor, "Scarlet").count():
            break
        assert time.monotonic() < deadline, "Scarlet was not applied to the collection"
        time.sleep(0.5)
    expect(row(editor, "Scarlet").locator(".source")).to_have_text("custom")
    assert "Scarlet" not in stored_labels(server, ids["b0"])

    # a fourth example from the page retrains the existing label
    editor.get_by_label("Teach a label from this image").fill("scarlet")
    editor.get_by_role("button", name="Teach").click()
    expect(editor.locator("#label-status")).to_contain_text("Scarlet now has 4 examples")
