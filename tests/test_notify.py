"""Deliveries for real: an aiosmtpd server with STARTTLS/TLS and AUTH, HTTP receivers on
127.0.0.1 for Slack and signed webhooks, folders; retries on an injected clock; two processes."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import subprocess
import sys
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from http_receiver import http_receiver
from imagedex.config import Settings
from imagedex.errors import ConfigError
from imagedex.notify import Attachment, DeliveryError, Message, Outbox, parse_target
from smtp_receiver import smtp_receiver

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
SECRET = "whsec-test-0123456789"
SLACK_TOKEN = "T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX"


class Clock:
    """The injected time source: tests move it instead of sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def make_settings(tmp_path: Path, **values: object) -> Settings:
    defaults: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "webhook_secret": SECRET,
        "delivery_retry_delay": 10.0,
        "delivery_max_attempts": 4,
        "delivery_allowed_hosts": "127.0.0.1",  # the receivers here are on this machine
        "delivery_folder_root": str(tmp_path),
    }
    return Settings(**{**defaults, **values})  # type: ignore[arg-type]


def message(**extra: object) -> Message:
    values: dict[str, object] = {
        "subject": "3 new images of cats",
        "text": "Rule 'cats' matched 3 images.",
        "link": "http://imagedex.example/search?q=label:cat",
        "image_url": "http://imagedex.example/thumb/abc.jpg",
        "payload": {"rule": "cats", "count": 3},
    }
    return Message(**{**values, **extra})  # type: ignore[arg-type]


# -- targets -----------------------------------------------------------------------------------


def test_parse_target_kinds_and_redaction() -> None:
    assert parse_target("mailto:a@x.org, b@y.example").recipients == ["a@x.org", "b@y.example"]
    slack = parse_target(f"slack:https://hooks.slack.com/services/{SLACK_TOKEN}")
    assert slack.kind == "slack"
    assert SLACK_TOKEN not in slack.redacted() and "XXXX" not in slack.redacted()
    assert slack.redacted().startswith("slack:https://hooks.slack.com/")
    bare = parse_target(f"https://hooks.slack.com/services/{SLACK_TOKEN}")
    assert bare.kind == "slack"
    hook = parse_target("https://example.org/hooks/abc?token=zzz")
    assert hook.kind == "webhook" and "zzz" not in hook.redacted() and "abc" not in hook.redacted()
    other = parse_target("webhook:https://example.org/hooks/def")
    assert hook.redacted() != other.redacted()  # two hooks on one host stay distinguishable
    assert parse_target("folder:/tmp/out").kind == "folder"
    with pytest.raises(ConfigError, match="redacted URL"):  # GET -> edit -> PUT keeps nothing dead
        parse_target(slack.redacted())


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("mailto:not-an-address", "not an e-mail address"),
        ("mailto:", "at least one"),
        ("webhook:ftp://example.org/x", "https://"),
        ("webhook:https://user:pw@example.org/x", "credentials"),
        ("slack:https://hooks.slack.com/a b", "without spaces"),
        ("webhook:https:///nohost", "no host"),
        ("webhook:https://example.org:99999/x", "invalid port"),
        ("hello world", "unknown delivery target"),
        ("sms:+33600000000", "unknown delivery target kind"),
        ("folder:", "directory path"),
    ],
)
def test_parse_target_rejects_bad_input(text: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        parse_target(text)


def test_plain_http_to_another_host_warns_but_loopback_does_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, "imagedex.notify"):
        assert parse_target("webhook:http://example.org/secret-path").insecure
        assert not parse_target("webhook:http://127.0.0.1:9/x").insecure
    assert len(caplog.records) == 1
    assert "plain http" in caplog.text and "secret-path" not in caplog.text


# -- e-mail ------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_email_with_tls_auth_and_attachments(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    security: str,
) -> None:
    password = "correct horse battery staple"
    with smtp_receiver(tmp_path, security, ("reports", password)) as smtp:
        monkeypatch.setenv("SSL_CERT_FILE", str(smtp.cert_file))  # trust the test certificate
        settings = make_settings(
            tmp_path,
            smtp_host=smtp.host,
            smtp_port=smtp.port,
            smtp_security=security,
            smtp_username="reports",
            smtp_password=password,
            smtp_from="imagedex@example.org",
        )
        outbox = Outbox.open(settings, Clock())
        mail = message(
            html="<p>3 new <b>cats</b></p>",
            attachments=[
                Attachment("weekly.pdf", "application/pdf", PDF),
                Attachment("chart.png", "image/png", PNG),
            ],
        )
        with caplog.at_level(logging.DEBUG):
            outbox.enqueue("mailto:ann@example.org,bob@example.org", mail, "report:weekly")
            assert outbox.deliver_due() == 1
    assert len(smtp.mails) == 1
    got = smtp.mails[0]
    assert got.login == "reports"
    assert got.sender == "imagedex@example.org"
    assert got.recipients == ["ann@example.org", "bob@example.org"]
    assert got.message["Subject"] == "3 new images of cats"
    parts = {p.get_filename(): p for p in got.message.iter_attachments()}
    assert parts["weekly.pdf"].get_content_type() == "application/pdf"
    assert parts["weekly.pdf"].get_content() == PDF
    assert parts["chart.png"].get_content_type() == "image/png"
    assert parts["chart.png"].get_content() == PNG
    body = got.message.get_body(("plain",))
    assert body is not None and "Rule 'cats' matched 3 images." in body.get_content()
    html = got.message.get_body(("html",))
    assert html is not None and "<b>cats</b>" in html.get_content()
    [delivery] = outbox.history()
    assert (delivery.status, delivery.attempts, delivery.source) == ("sent", 1, "report:weekly")
    assert password not in caplog.text


def test_email_wrong_password_fails_for_good_without_leaking_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with smtp_receiver(tmp_path, "starttls", ("reports", "right")) as smtp:
        monkeypatch.setenv("SSL_CERT_FILE", str(smtp.cert_file))
        settings = make_settings(
            tmp_path,
            smtp_host=smtp.host,
            smtp_port=smtp.port,
            smtp_username="reports",
            smtp_password="wrong-password-xyz",
        )
        outbox = Outbox.open(settings, Clock())
        with caplog.at_level(logging.DEBUG):
            outbox.enqueue("mailto:ann@example.org", message(), "alert:cats")
            assert outbox.deliver_due() == 0
    assert smtp.mails == []
    assert smtp.logins and set(smtp.logins) == {("reports", "wrong-password-xyz", False)}
    [delivery] = outbox.history()
    assert delivery.status == "failed" and delivery.attempts == 1  # retrying cannot help
    assert "login refused" in (delivery.last_error or "")
    assert "wrong-password-xyz" not in caplog.text
    assert "wrong-password-xyz" not in json.dumps([d.to_dict() for d in outbox.history()])


def test_email_starttls_refuses_an_untrusted_certificate(tmp_path: Path) -> None:
    with smtp_receiver(tmp_path, "starttls") as smtp:
        settings = make_settings(tmp_path, smtp_host=smtp.host, smtp_port=smtp.port)
        outbox = Outbox.open(settings, Clock())
        outbox.enqueue("mailto:ann@example.org", message(), "t")
        assert outbox.deliver_due() == 0
    assert smtp.mails == []
    [delivery] = outbox.history()
    assert delivery.status == "retrying" and "certificate" in (delivery.last_error or "")


# -- Slack and webhooks ------------------------------------------------------------------------


def test_webhook_is_signed_with_hmac_over_timestamp_and_body(tmp_path: Path) -> None:
    clock = Clock()
    with http_receiver() as rx:
        outbox = Outbox.open(make_settings(tmp_path), clock)
        delivery_id = outbox.enqueue(f"webhook:{rx.url}/hooks/imagedex", message(), "alert:cats")
        assert outbox.deliver_due() == 1
    [request] = rx.requests
    assert request.method == "POST" and request.path == "/hooks/imagedex"
    assert request.headers["content-type"] == "application/json"
    timestamp = request.headers["x-imagedex-timestamp"]
    assert timestamp == str(int(clock.now.timestamp()))
    expected = hmac.new(
        SECRET.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(request.headers["x-imagedex-signature"], f"sha256={expected}")
    assert request.headers["x-imagedex-delivery"] == delivery_id
    body = json.loads(request.body)
    assert body == {
        "subject": "3 new images of cats",
        "text": "Rule 'cats' matched 3 images.",
        "link": "http://imagedex.example/search?q=label:cat",
        "image_url": "http://imagedex.example/thumb/abc.jpg",
        "payload": {"rule": "cats", "count": 3},
        "sent_at": clock.now.isoformat(),
    }
    tampered = hmac.new(SECRET.encode(), timestamp.encode() + b"." + request.body + b" ", "sha256")
    assert request.headers["x-imagedex-signature"] != f"sha256={tampered.hexdigest()}"


def test_slack_body_has_text_thumbnail_and_link_button(tmp_path: Path) -> None:
    with http_receiver([(200, "ok")]) as rx:
        outbox = Outbox.open(make_settings(tmp_path), Clock())
        outbox.enqueue(f"slack:{rx.url}/services/{SLACK_TOKEN}", message(), "alert:cats")
        assert outbox.deliver_due() == 1
    [request] = rx.requests
    body = json.loads(request.body)
    assert "3 new images of cats" in body["text"]
    section, actions = body["blocks"]
    assert section["type"] == "section" and "*3 new images of cats*" in section["text"]["text"]
    assert section["accessory"] == {
        "type": "image",
        "image_url": "http://imagedex.example/thumb/abc.jpg",
        "alt_text": "3 new images of cats",
    }
    [button] = actions["elements"]
    assert button["type"] == "button" and button["url"] == message().link
    [delivery] = outbox.history()
    assert SLACK_TOKEN not in delivery.target and delivery.status == "sent"


def test_server_errors_are_retried_with_doubling_backoff(tmp_path: Path) -> None:
    clock = Clock()
    script = [(500, {"error": "busy"}), (500, {"error": "busy"}), (200, {})]
    with http_receiver(script) as rx:
        outbox = Outbox.open(make_settings(tmp_path), clock)
        outbox.enqueue(f"{rx.url}/hook", message(), "alert:cats")
        assert outbox.deliver_due() == 0
        [d] = outbox.history()
        assert (d.status, d.attempts) == ("retrying", 1) and "HTTP 500" in (d.last_error or "")
        assert d.next_attempt == (clock.now + timedelta(seconds=10)).isoformat()
        clock.advance(9)
        assert outbox.deliver_due() == 0 and len(rx.requests) == 1  # not yet due
        clock.advance(1)
        assert outbox.deliver_due() == 0 and len(rx.requests) == 2
        [d] = outbox.history()
        assert d.next_attempt == (clock.now + timedelta(seconds=20)).isoformat()  # doubled
        clock.advance(19)
        assert outbox.deliver_due() == 0 and len(rx.requests) == 2
        clock.advance(1)
        assert outbox.deliver_due() == 1 and len(rx.requests) == 3
    [d] = outbox.history()
    assert (d.status, d.attempts, d.last_error) == ("sent", 3, None)
    assert d.sent_at == clock.now.isoformat()


def test_receiver_down_retries_then_fails_visibly(tmp_path: Path) -> None:
    clock = Clock()
    with http_receiver() as rx:
        url = f"{rx.url}/hook/token-abc123"
    # the receiver has stopped: connections are refused
    outbox = Outbox.open(make_settings(tmp_path, delivery_max_attempts=3), clock)
    outbox.enqueue(url, message(), "alert:cats")
    statuses = []
    for delay in (0, 10, 20):
        clock.advance(delay)
        outbox.deliver_due()
        [d] = outbox.history()
        statuses.append((d.status, d.attempts))
    assert statuses == [("retrying", 1), ("retrying", 2), ("failed", 3)]
    clock.advance(3600)
    assert outbox.deliver_due() == 0
    [d] = outbox.history(source="alert:cats")
    assert d.status == "failed" and d.attempts == 3 and "ConnectError" in (d.last_error or "")
    assert "token-abc123" not in json.dumps(d.to_dict())
    # an operator retries it once the receiver is back
    with http_receiver() as back:
        outbox2 = Outbox.open(make_settings(tmp_path), clock)
        outbox2._db().execute("UPDATE deliveries SET target = ?", (f"webhook:{back.url}/h",))
        assert outbox2.retry(d.id).status == "queued"
        assert outbox2.deliver_due() == 1 and len(back.requests) == 1
    with pytest.raises(DeliveryError, match="already sent"):
        outbox2.retry(d.id)
    with pytest.raises(DeliveryError, match="no delivery"):
        outbox2.retry("nope")


@pytest.mark.parametrize(
    ("status", "expected"),
    [(404, "failed"), (400, "failed"), (410, "failed"), (429, "retrying"), (408, "retrying")],
)
def test_client_errors_are_permanent_except_timeout_and_rate_limit(
    tmp_path: Path, status: int, expected: str
) -> None:
    with http_receiver([(status, {"error": "no"})]) as rx:
        outbox = Outbox.open(make_settings(tmp_path), Clock())
        outbox.enqueue(f"{rx.url}/hook", message(), "alert:cats")
        outbox.deliver_due()
    [d] = outbox.history()
    assert (d.status, d.attempts) == (expected, 1)
    assert f"HTTP {status}" in (d.last_error or "")


def test_bad_target_is_refused_at_enqueue_and_nothing_is_stored(tmp_path: Path) -> None:
    outbox = Outbox.open(make_settings(tmp_path), Clock())
    with pytest.raises(ConfigError):
        outbox.enqueue("webhook:https://u:p@example.org/", message(), "t")
    assert outbox.history() == []


# -- folder ------------------------------------------------------------------------------------


def test_folder_target_writes_attachments_and_message(tmp_path: Path) -> None:
    folder = tmp_path / "drop" / "reports"
    outbox = Outbox.open(make_settings(tmp_path), Clock())
    mail = message(attachments=[Attachment("weekly report.pdf", "application/pdf", PDF)])
    delivery_id = outbox.enqueue(f"folder:{folder}", mail, "report:weekly")
    assert outbox.deliver_due() == 1
    names = sorted(p.name for p in folder.iterdir())
    stem = f"20260302T090000Z-{delivery_id[:8]}"
    assert names == [f"{stem}-weekly_report.pdf", f"{stem}.json", f"{stem}.txt"]
    assert (folder / f"{stem}-weekly_report.pdf").read_bytes() == PDF
    meta = json.loads((folder / f"{stem}.json").read_text())
    assert meta["subject"] == "3 new images of cats" and meta["payload"]["count"] == 3
    assert meta["attachments"] == [
        {"filename": f"{stem}-weekly_report.pdf", "content_type": "application/pdf"}
    ]


# -- concurrency -------------------------------------------------------------------------------


def test_two_outboxes_on_one_file_send_each_delivery_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with http_receiver() as rx:
        first, second = Outbox.open(settings), Outbox.open(settings)
        ids = {first.enqueue(f"{rx.url}/h", message(payload={"n": i}), "t") for i in range(40)}
        start = threading.Barrier(2)

        def drain(outbox: Outbox) -> None:
            start.wait()
            while outbox.deliver_due(limit=5):
                pass

        threads = [threading.Thread(target=drain, args=(o,)) for o in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    sent = Counter(r.headers["x-imagedex-delivery"] for r in rx.requests)
    assert set(sent) == ids and set(sent.values()) == {1}
    assert {d.status for d in first.history()} == {"sent"}


_DRAIN = """
import sys
from pathlib import Path
from imagedex.config import Settings
from imagedex.notify import Outbox
settings = Settings(
    data_dir=Path(sys.argv[1]), webhook_secret="s", delivery_allowed_hosts="127.0.0.1"
)
outbox = Outbox.open(settings)
print("ready", flush=True)
sys.stdin.readline()  # start together
total = 0
while True:
    sent = outbox.deliver_due(limit=3)
    total += sent
    if not sent and not any(d.status == "queued" for d in outbox.history(limit=1000)):
        break
print(total)
"""


def test_two_processes_send_each_delivery_exactly_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with http_receiver() as rx:
        outbox = Outbox.open(settings)
        ids = {outbox.enqueue(f"{rx.url}/h", message(payload={"n": i}), "t") for i in range(60)}
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _DRAIN, str(settings.data_dir)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for proc in procs:  # both are waiting: release them together
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    counts = [int(o.strip()) for o in outputs]
    print("sent per process:", counts)
    assert sum(counts) == 60
    sent = Counter(r.headers["x-imagedex-delivery"] for r in rx.requests)
    assert set(sent) == ids and set(sent.values()) == {1}
    assert {d.status for d in outbox.history(limit=100)} == {"sent"}


# -- CLI and API -------------------------------------------------------------------------------


def _failed_and_sent(settings: Settings, receiver_url: str) -> tuple[str, str]:
    outbox = Outbox.open(settings)
    ok = outbox.enqueue(f"folder:{settings.data_dir / 'drop'}", message(), "report:weekly")
    bad = outbox.enqueue(f"webhook:{receiver_url}/hook/tok-777", message(), "alert:cats")
    outbox.deliver_due()
    outbox.close()
    return ok, bad


def test_cli_lists_deliveries_and_retries_a_failed_one(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from imagedex.cli.main import main

    settings = make_settings(tmp_path, delivery_max_attempts=1)
    with http_receiver([(404, {}), (200, {})]) as rx:
        ok, bad = _failed_and_sent(settings, rx.url)
        runner = CliRunner()
        base = ["--data-dir", str(settings.data_dir), "deliveries"]
        listed = runner.invoke(main, [*base, "--json"])
        assert listed.exit_code == 0, listed.output
        rows = {row["id"]: row for row in json.loads(listed.output)}
        assert (rows[ok]["status"], rows[bad]["status"]) == ("sent", "failed")
        assert "tok-777" not in listed.output and "HTTP 404" in rows[bad]["last_error"]
        only = runner.invoke(main, [*base, "--source", "alert:", "--json"])
        assert [row["id"] for row in json.loads(only.output)] == [bad]
        table = runner.invoke(main, base)
        assert table.exit_code == 0 and "failed" in table.output
        retried = runner.invoke(main, [*base, "retry", bad[:10]])
        assert retried.exit_code == 0 and "queued again" in retried.output
        assert Outbox.open(settings).deliver_due() == 1 and len(rx.requests) == 2
        again = runner.invoke(main, [*base, "retry", ok])
        assert again.exit_code != 0 and "already sent" in again.output


def test_api_deliveries_is_for_admins(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from imagedex.access.control import AccessControl
    from imagedex.api import create_app
    from imagedex.services import Services

    settings = make_settings(tmp_path, auth="on", delivery_max_attempts=1)
    with http_receiver([(500, {})]) as rx:
        ok, bad = _failed_and_sent(settings, rx.url)
    services = Services.from_settings(settings)
    access = AccessControl(settings)
    app = create_app(services)
    app.state.access = access
    keys = {role: access.store.create_key(role, role)[1] for role in ("viewer", "admin")}
    try:
        with TestClient(app, base_url="http://127.0.0.1") as client:
            assert client.get("/api/deliveries").status_code == 401
            viewer = {"Authorization": f"Bearer {keys['viewer']}"}
            assert client.get("/api/deliveries", headers=viewer).status_code == 403
            admin = {"Authorization": f"Bearer {keys['admin']}"}
            answer = client.get("/api/deliveries", headers=admin)
            assert answer.status_code == 200
            data = answer.json()
            assert data["counts"] == {"queued": 0, "sent": 1, "retrying": 0, "failed": 1}
            assert [d["id"] for d in data["deliveries"]] == [bad, ok]
            assert "tok-777" not in answer.text
            filtered = client.get("/api/deliveries?source=report:weekly&limit=5", headers=admin)
            assert [d["id"] for d in filtered.json()["deliveries"]] == [ok]
            assert client.get("/api/deliveries?limit=0", headers=admin).status_code == 422
    finally:
        access.close()
        services.close()


def test_a_time_budget_bounds_one_delivery_round(tmp_path: Path) -> None:
    with http_receiver() as rx:
        outbox = Outbox.open(make_settings(tmp_path), Clock())
        for i in range(3):
            outbox.enqueue(f"{rx.url}/h", message(payload={"n": i}), "t")
        assert outbox.deliver_due(budget_s=0) == 1  # the first send always starts
        assert outbox.deliver_due() == 2
    assert len(rx.requests) == 3
