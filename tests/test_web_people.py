"""The People page and the image page's face links (issue 15) in a real browser (Debian chromium
through Playwright) against a real `imagedex up` with logins, on a data dir the real worker
filled with face_recognition on: BlazeFace and the dlib descriptor on face_recognition's test
photos (Obama x3 and a mirrored copy form one person, Biden and two altered copies another)."""

from __future__ import annotations

import io
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageEnhance, ImageOps
from playwright.sync_api import Browser, Page, expect

from cli_helpers import add_users, imagedex_env
from imagedex.config import Settings
from imagedex.ingest.upload import upload_bytes
from imagedex.ingest.worker import Worker
from imagedex.people.store import PeopleStore
from imagedex.services import Services
from test_browser import Server, start_server, stop_server
from test_web_delete import PASSWORD, logged_in

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from labelled_photos import photos

PHONE = {"width": 390, "height": 844}


def jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, Any]]]:
    found = {
        photo_id.split("/")[1]: image
        for photo_id, image, _ in photos(sources=["face_recognition"])
        if photo_id.split("/")[1] in ("obama", "obama2", "obama3", "biden")
    }
    files = {
        "obama.jpg": jpeg(found["obama"]),
        "obama2.jpg": jpeg(found["obama2"]),
        "obama3.jpg": jpeg(found["obama3"]),
        "obama_mirrored.jpg": jpeg(ImageOps.mirror(found["obama"])),
        "biden.jpg": jpeg(found["biden"]),
        "biden_brighter.jpg": jpeg(ImageEnhance.Brightness(found["biden"]).enhance(1.3)),
        "biden_mirrored.jpg": jpeg(ImageOps.mirror(found["biden"])),
    }
    data_dir = tmp_path_factory.mktemp("web-people") / "data"
    settings = {"recognizers": "faces", "semantic": False, "face_recognition": True}
    services = Services.from_settings(Settings(data_dir=data_dir, **settings))
    ids = {name: upload_bytes(services, name, data).doc_id for name, data in files.items()}
    Worker(services).run(once=True)
    services.close()
    store = PeopleStore.in_data_dir(data_dir)
    people = {p.faces: p.id for p in store.people()}
    store.close()
    assert sorted(people) == [3, 4], people  # Obama's four faces, Biden's three
    extra = {"IMAGEDEX_RECOGNIZERS": "faces", "IMAGEDEX_FACE_RECOGNITION": "true"}
    env = imagedex_env(data_dir, IMAGEDEX_AUTH="on", **extra)
    add_users(env, {"ed": "editor", "vi": "viewer"}, PASSWORD)
    server = start_server(data_dir, [], "--no-worker", IMAGEDEX_AUTH="on", **extra)
    yield server, {"ids": ids, "obama": people[4], "biden": people[3]}
    stop_server(server)


def shot(page: Page, name: str) -> None:
    """Screenshots for a person to look at, when IMAGEDEX_SCREENSHOTS names a folder."""
    folder = os.environ.get("IMAGEDEX_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def dismissing(asked: list[str]) -> Any:
    def handle(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    return handle


def face_is_cropped(page: Page, person: int) -> None:
    """The cover thumbnail is placed so that the face fills the square: scaled up, shown."""
    img = page.locator(f"#person-{person} .face img")
    expect(img).to_have_css("visibility", "visible")
    frame = page.locator(f"#person-{person} .face").bounding_box()
    shown = img.bounding_box()
    assert frame and shown
    assert abs(frame["width"] - frame["height"]) < 2  # square
    assert shown["width"] > frame["width"] * 1.5  # the picture is larger than the crop
    assert img.evaluate("i => i.naturalWidth") > 0


def test_viewers_see_one_card_per_person_with_a_face_and_a_link_to_their_photos(
    browser: Browser, site: tuple[Server, dict[str, Any]]
) -> None:
    server, known = site
    for page in logged_in(browser, server.url, "vi"):
        page.get_by_role("navigation", name="Main").get_by_role("link", name="People").click()
        expect(page).to_have_url(f"{server.url}/people")
        cards = page.locator("#people .person-card")
        expect(cards).to_have_count(2)
        obama = page.locator(f"#person-{known['obama']}")
        expect(obama.get_by_role("heading")).to_contain_text("Unnamed")
        expect(obama.locator(".person-counts")).to_have_text("4 faces in 4 images")
        expect(page.locator(f"#person-{known['biden']} .person-counts")).to_have_text(
            "3 faces in 3 images"
        )
        expect(obama.get_by_role("img")).to_have_attribute(
            "alt", f"Face of unnamed person {known['obama']}"
        )
        face_is_cropped(page, known["obama"])
        expect(page.locator("#people-summary")).to_contain_text("2 people, 7 faces")
        expect(page.get_by_role("button", name="Save")).to_have_count(0)  # viewers change nothing
        expect(page.get_by_role("button", name="Hide")).to_have_count(0)
        shot(page, "people-desktop")

        obama.get_by_role("link", name=f"Photos of unnamed person {known['obama']}").click()
        expect(page).to_have_url(re.compile(rf"/search\?q=person%3A{known['obama']}$"))
        titles = page.locator(".card-title")
        expect(titles).to_have_count(4)
        assert sorted(titles.all_inner_texts()) == sorted(
            ["obama.jpg", "obama2.jpg", "obama3.jpg", "obama_mirrored.jpg"]
        )


def test_a_direct_load_works_on_a_phone_without_sideways_scrolling(
    browser: Browser, site: tuple[Server, dict[str, Any]]
) -> None:
    server, known = site
    for page in logged_in(browser, server.url, "ed"):
        page.set_viewport_size(PHONE)
        page.goto(f"{server.url}/people")  # served by the server itself, not only in-app
        expect(page.locator("#people .person-card")).to_have_count(2)
        face_is_cropped(page, known["biden"])
        expect(page.get_by_label("Same person as").first).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], width
        shot(page, "people-phone")


def test_the_image_page_links_each_face_to_its_person(
    browser: Browser, site: tuple[Server, dict[str, Any]]
) -> None:
    server, known = site
    for page in logged_in(browser, server.url, "vi"):
        page.goto(f"{server.url}/images/{known['ids']['obama2.jpg']}")
        link = page.get_by_role("link", name=f"Face 1: person {known['obama']}")
        expect(link).to_have_count(1)
        shot(page, "image-face-link")
        link.click()
        expect(page).to_have_url(f"{server.url}/people?person={known['obama']}")
        expect(page.locator("#people .person-card")).to_have_count(1)
        expect(page.locator(f"#person-{known['obama']}")).to_be_visible()
        page.get_by_role("link", name="All people").click()
        expect(page.locator("#people .person-card")).to_have_count(2)


def test_editors_rename_hide_and_merge(
    browser: Browser, site: tuple[Server, dict[str, Any]]
) -> None:
    server, known = site
    obama, biden = known["obama"], known["biden"]
    for page in logged_in(browser, server.url, "ed"):
        page.goto(f"{server.url}/people")
        card = page.locator(f"#person-{obama}")
        card.get_by_label("Name", exact=True).fill("Barack Obama")
        card.get_by_label("Name", exact=True).press("Enter")
        expect(page.locator(f"#person-{obama} h2")).to_have_text("Barack Obama")
        expect(page.locator("#people-status")).to_contain_text("is now Barack Obama")
        expect(page.locator(f"#person-{obama}").get_by_role("link")).to_have_accessible_name(
            "Photos of Barack Obama"
        )

        page.locator(f"#person-{biden}").get_by_role("button", name="Hide").click()
        expect(page.locator("#people .person-card")).to_have_count(1)
        page.get_by_label("Show hidden people").check()
        hidden = page.locator(f"#person-{biden}")
        expect(hidden).to_contain_text("hidden")
        hidden.get_by_role("button", name="Show").click()
        expect(page.locator("#people-status")).to_contain_text("shown again")
        page.get_by_label("Show hidden people").uncheck()
        expect(page.locator("#people .person-card")).to_have_count(2)
        expect(page.locator("#people")).to_have_attribute("aria-busy", "false")

        card = page.locator(f"#person-{biden}")
        card.get_by_label("Same person as").select_option(str(obama))
        asked: list[str] = []
        page.once("dialog", dismissing(asked))
        card.get_by_role("button", name="Merge").click()
        expect(page.locator("#people .person-card")).to_have_count(2)  # dismissed: nothing
        assert asked and "into Barack Obama" in asked[0]
        page.once("dialog", lambda dialog: dialog.accept())
        page.locator(f"#person-{biden}").get_by_role("button", name="Merge").click()
        expect(page.locator("#people .person-card")).to_have_count(1)
        expect(page.locator(f"#person-{obama} .person-counts")).to_have_text("7 faces in 7 images")
