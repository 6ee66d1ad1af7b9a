"""Webhooks are signed by default: each webhook URL has its own generated key, which the admin
gets with `imagedex config webhook-secret URL` and the receiver checks the signature with."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

from cli_helpers import cli_json, imagedex_env, run_cli
from http_receiver import http_receiver
from imagedex.config import Settings
from imagedex.notify import Message, Outbox

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _verifies(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does (docs/reports-alerts.md, "Signed webhooks")."""
    signed = headers["x-imagedex-timestamp"].encode() + b"." + body
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["x-imagedex-signature"])


def test_webhooks_are_signed_without_any_setting(tmp_path: Path) -> None:
    env = imagedex_env(tmp_path / "data")
    # webhook_secret left empty; the receiver is on this machine
    settings = Settings(data_dir=tmp_path / "data", delivery_allowed_hosts="127.0.0.1")
    with http_receiver() as receiver:
        outbox = Outbox.open(settings, lambda: NOW)
        target = f"webhook:{receiver.url}/hooks/a?token=t1"
        outbox.enqueue(target, Message("3 cats", "Rule matched."), "alert:cats")
        assert outbox.deliver_due() == 1
        [request] = receiver.requests
    assert "x-imagedex-signature" in request.headers
    shown = cli_json(env, "config", "webhook-secret", target)
    secret = shown["secret"]
    assert len(secret) == 64 and "t1" not in shown["target"]  # the target shown redacted
    assert _verifies(secret, request.headers, request.body)
    assert not _verifies(secret, request.headers, request.body + b" ")  # tampering shows
    # the same secret as plain output, for $(imagedex config webhook-secret URL)
    bare = run_cli(env, "config", "webhook-secret", target.removeprefix("webhook:"))
    assert bare.stdout.strip() == secret
    key = tmp_path / "data" / "webhook.key"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    # nothing that stores deliveries holds the secret
    for stored in (tmp_path / "data").glob("outbox.sqlite3*"):
        assert secret.encode() not in stored.read_bytes()


def test_each_webhook_has_its_own_secret_and_keeps_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", delivery_allowed_hosts="127.0.0.1")
    env = imagedex_env(tmp_path / "data")
    with http_receiver() as receiver:
        outbox = Outbox.open(settings, lambda: NOW)
        targets = [f"webhook:{receiver.url}/a", f"webhook:{receiver.url}/b"]
        for target in targets:
            outbox.enqueue(target, Message("3 cats", "Rule matched."), "alert:cats")
        assert outbox.deliver_due() == 2
        requests = {r.path: r for r in receiver.requests}
    secret_a, secret_b = (cli_json(env, "config", "webhook-secret", t)["secret"] for t in targets)
    assert secret_a != secret_b  # one receiver cannot sign as imagedex to another
    assert _verifies(secret_a, requests["/a"].headers, requests["/a"].body)
    assert _verifies(secret_b, requests["/b"].headers, requests["/b"].body)
    assert not _verifies(secret_a, requests["/b"].headers, requests["/b"].body)
    assert cli_json(env, "config", "webhook-secret", targets[0])["secret"] == secret_a  # kept


def test_a_configured_secret_signs_every_webhook(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        webhook_secret="whsec-shared-42",
        delivery_allowed_hosts="127.0.0.1",
    )
    with http_receiver() as receiver:
        outbox = Outbox.open(settings, lambda: NOW)
        outbox.enqueue(f"webhook:{receiver.url}/x", Message("3 cats", "Rule matched."), "a:x")
        assert outbox.deliver_due() == 1
        [request] = receiver.requests
    assert _verifies("whsec-shared-42", request.headers, request.body)
    env = imagedex_env(tmp_path / "data", IMAGEDEX_WEBHOOK_SECRET="whsec-shared-42")
    shown = cli_json(env, "config", "webhook-secret", "https://example.org/hooks/x")
    assert shown["secret"] == "whsec-shared-42"
    assert not (tmp_path / "data" / "webhook.key").exists()  # nothing generated


def test_only_webhooks_have_a_secret(tmp_path: Path) -> None:
    env = imagedex_env(tmp_path / "data")
    refused = run_cli(
        env, "config", "webhook-secret", "slack:https://hooks.slack.com/services/T/B/X", check=False
    )
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "only webhooks are signed" in refused.stderr
    assert "T/B/X" not in refused.stderr  # the token in Slack's URL is not echoed
