"""The Alerts page says when each rule last fired, as it happens: in Debian chromium against the
real app (uvicorn), with the rule fired by the worker's own per-image hook."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from conftest import CHROMIUM, CHROMIUM_ARGS, make_document
from imagedex.alerts.evaluate import ImageRuleHook
from imagedex.alerts.manage import send_test
from imagedex.config import load_settings
from imagedex.services import Services
from live_app import live_app


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Services, str]]:
    settings = load_settings(
        environ={}, data_dir=tmp_path / "data", auth="off", delivery_folder_root=str(tmp_path)
    )
    services = Services.from_settings(settings)
    with live_app(services) as url:
        yield services, url
    services.close()


def test_last_fired_follows_the_rule_while_the_page_is_open(
    served: tuple[Services, str], tmp_path: Path
) -> None:
    services, url = served
    rule = {"kind": "label", "label": "cat", "actions": [f"folder:{tmp_path}/drop"], "throttle": 0}
    assert httpx.post(f"{url}/api/alerts/cats", json=rule, timeout=30).status_code == 201
    assert httpx.get(f"{url}/api/alerts", timeout=30).json()["rules"][0]["last_fired_at"] is None

    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page()
        page.goto(url + "/alerts")
        cell = page.locator('#alert-rules tr[data-rule="cats"] td.last-fired')
        expect(cell).to_have_text("never")

        # the worker indexes a cat: its hook fires the rule
        cat = make_document("photos/cat.jpg", [("tabby cat", 93.0, ("cat", "animal"))], etag="e1")
        ImageRuleHook(services.settings)([cat])
        (alert,) = httpx.get(f"{url}/api/alerts/history", timeout=30).json()["alerts"]
        shown = page.evaluate("iso => new Date(iso).toLocaleString()", alert["fired_at"])
        expect(cell).to_have_text(shown, timeout=12_000)  # no reload: the page keeps up
        expect(page.locator('#alert-history tr[data-rule="cats"]')).to_have_count(1)

        # a test notification is not a firing; a changed rule keeps its past
        send_test(services.settings, "cats", datetime.now(UTC))
        assert httpx.put(f"{url}/api/alerts/cats", json=rule, timeout=30).status_code == 200
        listed = httpx.get(f"{url}/api/alerts", timeout=30).json()["rules"][0]
        assert listed["last_fired_at"] == alert["fired_at"]
        page.reload()
        expect(cell).to_have_text(shown)
        browser.close()
