"""A target kind is one class registered under its scheme: parsed, redacted and sent through the
outbox like the built-in ones; unknown schemes are refused with the valid ones."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

import httpx
import pytest

from http_receiver import http_receiver
from imagedex.config import Settings
from imagedex.errors import ConfigError
from imagedex.notify import TARGET_KINDS, Message, Outbox, Target, parse_target
from imagedex.notify.senders import SendError

TOKEN = "pager-token-4f1c9e"


class PagerTarget(Target):
    """The toy kind: `pager:http://host/page?token=...` POSTs the subject. It says nothing about
    what is safe to show, so the base redacts all of its address."""

    kind = scheme = "pager"

    @classmethod
    def parse(cls, rest: str) -> Self:
        if not rest.startswith(("http://", "https://")):
            raise ConfigError("pager: needs an http(s) URL")
        return cls(rest)

    def send(self, message: Message, settings: Settings, now: datetime, delivery_id: str) -> None:
        response = httpx.post(self.address, json={"page": message.subject}, timeout=5)
        if response.status_code != 200:
            raise SendError(f"{self} answered HTTP {response.status_code}")


@pytest.fixture
def pager_kind() -> Iterator[None]:
    TARGET_KINDS.register("pager", PagerTarget)
    yield
    TARGET_KINDS.unregister("pager")


def test_a_registered_kind_is_parsed_redacted_and_delivered(
    pager_kind: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(data_dir=tmp_path / "data")

    def clock() -> datetime:
        return datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    with http_receiver() as rx:
        spec = f"pager:{rx.url}/page?token={TOKEN}"
        target = parse_target(spec)
        assert isinstance(target, PagerTarget) and target.spec == spec
        assert TOKEN not in target.redacted() and TOKEN not in repr(target)
        assert target.redacted().startswith("pager:…#")
        outbox = Outbox.open(settings, clock)
        with caplog.at_level(logging.DEBUG, "imagedex"):
            delivery_id = outbox.enqueue(spec, Message("disk full", "on node 3"), "alert:disk")
            assert outbox.deliver_due() == 1
    [request] = rx.requests
    assert request.path == f"/page?token={TOKEN}"
    assert json.loads(request.body) == {"page": "disk full"}
    [delivery] = outbox.history()
    assert (delivery.id, delivery.status, delivery.target) == (delivery_id, "sent", str(target))
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("imagedex")]
    assert any(delivery_id in line and str(target) in line for line in logged)
    assert not [line for line in logged if TOKEN in line]
    assert TOKEN not in json.dumps(delivery.to_dict())
    outbox.close()
    with sqlite3.connect(settings.data_dir / "outbox.sqlite3") as db:
        [(shown,)] = db.execute("SELECT target_redacted FROM deliveries").fetchall()
    assert shown == target.redacted()


def test_an_unknown_scheme_is_refused_naming_the_valid_ones(pager_kind: None) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_target("pagr:http://127.0.0.1/page")
    text = str(refused.value)
    assert "unknown delivery target kind 'pagr'" in text and "did you mean 'pager'" in text
    assert "choose from mailto, slack, webhook, folder, pager" in text
    with pytest.raises(ConfigError, match="folder:, pager: or an http"):
        parse_target("no scheme at all")
    with pytest.raises(ConfigError, match="needs an http"):  # the kind's own check
        parse_target("pager:ftp://example.org/")


def test_the_built_in_kinds_keep_their_classes_and_redaction() -> None:
    for spec, kind in [
        ("mailto:a@x.org", "email"),
        ("slack:https://hooks.slack.com/services/T/B/C", "slack"),
        ("webhook:https://example.org/h", "webhook"),
        ("folder:/tmp/out", "folder"),
    ]:
        target = parse_target(spec)
        assert target.kind == kind and parse_target(target.spec) == target
    assert str(parse_target("mailto:a@x.org")) == "mailto:a@x.org"
    hook = parse_target("https://example.org:8443/hooks/abc?token=zzz")
    assert hook.redacted().startswith("webhook:https://example.org:8443/…#")
    assert "zzz" not in repr(hook)
