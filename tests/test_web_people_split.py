"""The dashboard's People panel and "Not this person" on the People page (issue 15) in a real
browser (Debian chromium through Playwright) against a real `imagedex up` with logins, on the
data dir test_web_people's fixture fills with the real worker and face recognition on (Obama's
four faces, Biden's three)."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Browser, expect

from test_browser import Server
from test_web_delete import logged_in
from test_web_people import face_is_cropped, shot, site

__all__ = ["site"]  # the fixture, used by name


def test_the_dashboard_shows_the_people_on_the_most_images(
    browser: Browser, site: tuple[Server, dict[str, Any]]
) -> None:
    server, known = site
    obama, biden = known["obama"], known["biden"]
    for page in logged_in(browser, server.url, "vi"):
        page.goto(f"{server.url}/dashboard")
        panel = page.locator("#panel-people")
        bars = panel.locator("a.chart-link")
        expect(bars).to_have_count(2)
        expect(bars.nth(0)).to_have_attribute("aria-label", f"Unnamed #{obama}: 4; search for it")
        expect(bars.nth(1)).to_have_attribute("aria-label", f"Unnamed #{biden}: 3; search for it")
        expect(panel.get_by_role("link", name="Download People data as CSV")).to_have_attribute(
            "href", re.compile(r"^/api/dashboard/people\.csv")
        )
        shot(page, "dashboard-people")

        page.locator("#dash-q").fill("obama2")  # the filter bar drives this panel too
        page.get_by_role("button", name="Apply").click()
        expect(bars).to_have_count(1)
        expect(bars.nth(0)).to_have_attribute("aria-label", f"Unnamed #{obama}: 1; search for it")
        csv = panel.get_by_role("link", name="Download People data as CSV")
        expect(csv).to_have_attribute("href", re.compile(r"people\.csv\?q=obama2"))

        page.locator("#dash-q").fill("")
        page.get_by_role("button", name="Apply").click()
        expect(bars).to_have_count(2)
        bars.nth(1).click()
        expect(page).to_have_url(re.compile(rf"/search\?q=person%3A{biden}$"))
        expect(page.locator(".card-title")).to_have_count(3)


def test_editors_take_a_face_off_a_person_and_viewers_cannot(
    browser: Browser, site: tuple[Server, dict[str, Any]]
) -> None:
    server, known = site
    obama = known["obama"]
    for page in logged_in(browser, server.url, "vi"):
        page.goto(f"{server.url}/people?person={obama}")
        expect(page.locator("#person-faces .face-card")).to_have_count(4)
        expect(page.get_by_role("button", name="Not this person")).to_have_count(0)

    for page in logged_in(browser, server.url, "ed"):
        page.goto(f"{server.url}/people?person={obama}")
        faces = page.locator("#person-faces .face-card")
        expect(faces).to_have_count(4)
        face_is_cropped(page, obama)  # the card's cover, as on the list
        first = faces.first.locator(".face img")
        expect(first).to_have_css("visibility", "visible")
        assert first.evaluate("i => i.naturalWidth") > 0
        face_id = faces.first.get_attribute("data-face")
        shot(page, "person-faces")

        faces.first.get_by_role(
            "button", name=f"Face {face_id} is not unnamed person {obama}"
        ).click()
        expect(page.locator("#people-status")).to_contain_text(f"Face {face_id} is no longer")
        expect(faces).to_have_count(3)
        expect(page.locator(f"#person-{obama} .person-counts")).to_have_text("3 faces in 3 images")
        page.goto(f"{server.url}/people")
        expect(page.locator("#people-summary")).to_contain_text("1 face waits")
