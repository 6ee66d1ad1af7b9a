"""The Alerts page in Debian chromium through Playwright against a real `imagedex up` (API,
worker, imagenet recognizer, background deliveries) with a real webhook receiver on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from http_receiver import Receiver, http_receiver

# the browser fixtures of test_browser, shared by name (tests taking them carry `noqa: F811`)
from test_browser import (  # noqa: F401
    INDEXING_TIMEOUT_MS,
    Server,
    browser,
    page,
    phone,
    playwright,
    start_server,
    stop_server,
)


@pytest.fixture(scope="module")
def hook() -> Iterator[Receiver]:
    with http_receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def alerts_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("web-alerts")
    running = start_server(
        root / "data",
        [],
        IMAGEDEX_AUTH="off",
        IMAGEDEX_RECOGNIZERS="imagenet",
        IMAGEDEX_DELIVERY_ALLOWED_HOSTS="127.0.0.1",  # the hook receivers are on this machine
    )
    yield running
    stop_server(running)


def test_create_mute_unmute_then_an_ingested_image_fires_a_webhook_shown_in_history(
    alerts_server: Server,
    page: Page,  # noqa: F811
    hook: Receiver,
    photo_dir: Path,
) -> None:
    url = alerts_server.url
    page.goto(url + "/search")
    page.get_by_role("link", name="Alerts").click()
    expect(page).to_have_url(url + "/alerts")
    expect(page.locator("#alert-rules")).to_contain_text("No alert rules yet.")

    target = f"webhook:{hook.url}/cats"
    page.get_by_label("Name").fill("cats")
    page.get_by_label("Kind").select_option("label")
    expect(page.get_by_label("Text pattern")).to_be_hidden()
    page.get_by_label("Label", exact=True).fill("cat")
    page.get_by_label("Minimum confidence (%)").fill("50")
    page.get_by_label("Targets").fill(target)
    page.get_by_label("Throttle").fill("0")
    page.get_by_role("button", name="Create rule").click()
    expect(page.locator("#alerts-status")).to_have_text("created cats")

    row = page.locator('#alert-rules tr[data-rule="cats"]')
    expect(row).to_contain_text("label cat >= 50%")
    expect(row).to_contain_text(f"webhook:{hook.url}/…#")  # shown redacted, as the API gives it
    expect(row).not_to_contain_text("/cats")
    expect(row.locator(".muted-state")).to_have_text("no")
    expect(row).to_contain_text("never")

    row.get_by_label("Mute cats for").select_option("8h")
    row.get_by_role("button", name="Mute").click()
    expect(row.locator(".muted-state")).to_contain_text("muted until")
    expect(row).to_have_attribute("data-muted", "true")
    api_rule = alerts_server.api("/api/alerts/cats")
    assert api_rule["muted"] is True and api_rule["muted_until"] != "forever"

    # focus moves to the row's Unmute button, so the keyboard alone undoes the mute
    unmute = row.get_by_role("button", name="Unmute")
    expect(unmute).to_be_focused()
    page.keyboard.press("Enter")
    expect(row.locator(".muted-state")).to_have_text("no")
    assert alerts_server.api("/api/alerts/cats")["muted"] is False

    row.get_by_label("Mute cats for").select_option("")
    row.get_by_role("button", name="Mute").click()
    expect(row.locator(".muted-state")).to_have_text("muted until unmuted")
    assert alerts_server.api("/api/alerts/cats")["muted_until"] == "forever"
    row.get_by_role("button", name="Unmute").click()
    expect(row.locator(".muted-state")).to_have_text("no")

    # a cat comes in: the worker fires the rule, the background loop posts to the receiver
    with (photo_dir / "chelsea.jpg").open("rb") as photo:
        answer = httpx.post(
            url + "/api/images", files={"file": ("chelsea.jpg", photo, "image/jpeg")}, timeout=60
        )
    assert answer.status_code in (200, 201, 202), answer.text
    history = page.locator('#alert-history tr[data-rule="cats"]')
    expect(history).to_have_count(1, timeout=INDEXING_TIMEOUT_MS)
    expect(history).to_have_attribute("data-status", "sent", timeout=60_000)
    # the history shows the target as the API redacts it: the URL path (a secret on Slack) is cut
    delivery = history.locator(".delivery li")
    expect(delivery).to_contain_text(f"webhook:{hook.url}/…")
    expect(delivery).to_contain_text(": sent")
    expect(delivery).not_to_contain_text("/cats")

    posts = [r for r in hook.requests if r.path == "/cats"]
    assert len(posts) == 1 and posts[0].method == "POST"
    assert json.loads(posts[0].body)["payload"]["rule"] == "cats"
    alerts = alerts_server.api("/api/alerts/history")["alerts"]
    assert [a["status"] for a in alerts] == ["sent"]
    doc_id = alerts[0]["doc_ids"][0]
    assert alerts_server.api(f"/api/images/{doc_id}")["title"] == "chelsea.jpg"
    expect(history.get_by_role("link", name=doc_id)).to_have_attribute("href", f"/images/{doc_id}")

    page.reload()
    expect(row).not_to_contain_text("never")


def test_a_bad_rule_shows_the_api_error_and_a_rule_can_be_deleted(
    alerts_server: Server,
    page: Page,  # noqa: F811
    hook: Receiver,
) -> None:
    body = {"kind": "text", "pattern": "([", "regex": True, "actions": [f"webhook:{hook.url}/t"]}
    refused = httpx.post(alerts_server.url + "/api/alerts/bad-regex", json=body, timeout=10)
    assert refused.status_code == 400
    detail = refused.json()["detail"]

    page.goto(alerts_server.url + "/alerts")
    page.get_by_label("Kind").select_option("text")
    expect(page.get_by_label("Label", exact=True)).to_be_hidden()
    page.get_by_label("Name").fill("bad-regex")
    page.get_by_label("Text pattern").fill("([")
    page.get_by_label("regular expression").check()
    page.get_by_label("Targets").fill(f"webhook:{hook.url}/t")
    page.get_by_role("button", name="Create rule").click()
    error = page.locator("#alert-form-error")
    expect(error).to_have_text(detail)
    expect(error).to_have_attribute("role", "alert")
    expect(page.get_by_label("Name")).to_have_value("bad-regex")  # nothing typed is lost
    expect(page.locator('#alert-rules tr[data-rule="bad-regex"]')).to_have_count(0)

    page.get_by_label("regular expression").uncheck()
    page.get_by_role("button", name="Create rule").click()
    expect(page.locator("#alerts-status")).to_have_text("created bad-regex")
    expect(error).to_be_hidden()
    row = page.locator('#alert-rules tr[data-rule="bad-regex"]')
    expect(row).to_contain_text("text '(['")

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete").click()
    expect(row).to_have_count(0)
    assert httpx.get(alerts_server.url + "/api/alerts/bad-regex", timeout=10).status_code == 404


def test_alerts_page_fits_a_phone(
    alerts_server: Server,
    phone: Page,  # noqa: F811
) -> None:
    phone.goto(alerts_server.url + "/alerts")
    expect(phone.locator("#alert-form")).to_be_visible()
    expect(phone.locator("#alert-rules > *").first).to_be_visible()
    expect(phone.locator("#alert-history > *").first).to_be_visible()
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the page scrolls sideways on a phone: {width}px"
    box = phone.locator("#alert-targets").bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 360
