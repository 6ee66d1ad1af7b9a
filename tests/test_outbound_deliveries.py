"""What deliveries may reach and write (issue 14, items 5-7), against real receivers: internal
hosts refused on save and on the address connected to unless allowed, reply text kept out of
the history, folder targets confined below their root, header values cleaned, and errors no
retry can fix failed at once."""

from __future__ import annotations

import json
import os
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import pytest

from cli_helpers import imagedex_env, run_cli
from http_receiver import http_receiver
from imagedex.alerts.manage import save_rule
from imagedex.alerts.model import Rule
from imagedex.config import Settings, load_settings
from imagedex.errors import ConfigError
from imagedex.notify import TARGET_KINDS, Message, Outbox, Target
from imagedex.reports.manage import create_report, update_report
from imagedex.reports.model import Report
from smtp_receiver import make_certificate, smtp_receiver

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

INTERNAL = [
    "127.0.0.1",
    "127.1",
    "0x7f000001",
    "2130706433",
    "0177.0.0.1",
    "0x7f.0.0.1",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[::ffff:169.254.169.254]",
    "[64:ff9b::a9fe:a9fe]",  # NAT64 form of the metadata address
    "[2002:a9fe:a9fe::1]",  # 6to4 form of it
    "169.254.169.254",
    "0xa9fea9fe",
    "10.0.0.5",
    "172.16.1.1",
    "172.31.255.254",
    "192.168.1.10",
    "100.64.0.1",
    "0.0.0.0",
    "[::]",
    "[fc00::1]",
    "[fd12:3456::1]",
    "[fe80::1]",
    "224.0.0.1",
    "[ff02::1]",
    "255.255.255.255",
    "localhost",
    "LocalHost.",
    "imagedex.localhost",
]


def clock() -> datetime:
    return NOW


def settings_for(tmp_path: Path, **values: Any) -> Settings:
    return load_settings(environ={}, data_dir=tmp_path / "data", webhook_secret="s", **values)


def message(subject: str = "3 new images of cats") -> Message:
    return Message(subject=subject, text="Rule 'cats' matched 3 images.", payload={"n": 3})


# -- internal hosts -----------------------------------------------------------------------------


@pytest.mark.parametrize("host", INTERNAL)
def test_webhooks_to_internal_hosts_are_refused_on_save(tmp_path: Path, host: str) -> None:
    settings = settings_for(tmp_path)
    for target in (f"webhook:http://{host}:8080/hook", f"slack:https://{host}/services/x"):
        rule = Rule(name="r", kind="label", label="cat", actions=(target,))
        with pytest.raises(ConfigError, match="delivery_allowed_hosts"):
            save_rule(settings, rule, NOW)
    with pytest.raises(ConfigError, match="delivery_allowed_hosts"):
        create_report(settings, Report(name="w", recipients=(f"https://{host}/h",)))


def test_public_hosts_and_allowed_networks_are_saved(tmp_path: Path) -> None:
    public = ("webhook:https://hooks.example.org/x", "slack:https://8.8.8.8/s")
    settings = settings_for(tmp_path)
    assert (
        save_rule(settings, Rule(name="r", kind="label", label="cat", actions=public), NOW).actions
        == public
    )
    allowed = settings_for(tmp_path, delivery_allowed_hosts="10.0.0.0/8, 127.0.0.1, [::1]")
    internal = ("webhook:http://10.1.2.3/h", "webhook:http://0x7f000001:9/h", "slack:http://[::1]/")
    saved = save_rule(allowed, Rule(name="r2", kind="label", label="cat", actions=internal), NOW)
    assert saved.actions == internal
    with pytest.raises(ConfigError, match=r"192\.168\.1\.1 is a private address"):
        save_rule(
            allowed,
            Rule(name="r3", kind="label", label="cat", actions=("http://192.168.1.1/",)),
            NOW,
        )
    create_report(settings, Report(name="weekly", recipients=("mailto:a@example.org",)))
    with pytest.raises(ConfigError, match="loopback"):
        update_report(settings, "weekly", recipients=("webhook:http://[::1]/hook",))


def test_cli_refuses_an_internal_webhook_in_one_line(tmp_path: Path) -> None:
    env = imagedex_env(tmp_path / "data")
    for command in (
        ["alert", "create", "meta", "--label", "cat", "--to", "webhook:http://169.254.169.254/x"],
        ["report", "create", "w", "--to", "webhook:http://0x7f000001/x"],
    ):
        refused = run_cli(env, *command, check=False)
        assert refused.returncode != 0
        assert "Traceback" not in refused.stderr
        error = " ".join(refused.stderr[refused.stderr.index("error:") :].split())
        assert error.count("error:") == 1 and error.endswith("setting delivery_allowed_hosts")
    assert json.loads(run_cli(env, "alert", "list", "--json").stdout) == {"rules": []}


def test_a_name_that_resolves_to_an_internal_address_is_refused_when_sent(
    tmp_path: Path,
) -> None:
    """Names are not resolved on save; the send resolves them and checks what it gets, so a
    target stored earlier (or a name whose DNS answer changed) reaches nothing internal."""
    with http_receiver() as rx:
        port = rx.url.rsplit(":", 1)[1]
        outbox = Outbox.open(settings_for(tmp_path), clock)
        delivery_id = outbox.enqueue(f"webhook:http://localhost:{port}/hook", message(), "t")
        assert outbox.deliver_due() == 0
        assert rx.requests == []
    delivery = outbox.get(delivery_id)
    assert delivery is not None
    assert (delivery.status, delivery.attempts) == ("failed", 1)  # no retry makes it allowed
    assert "localhost resolves to a loopback address (127.0.0.1)" in (delivery.last_error or "")


def test_an_allowed_name_is_reached_on_its_checked_address_with_its_own_host_and_sni(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with https_receiver(tmp_path) as rx:
        monkeypatch.setenv("SSL_CERT_FILE", str(rx.cert_file))  # trust the test certificate
        url = f"https://localhost:{rx.port}/hooks/tok"
        refused = Outbox.open(settings_for(tmp_path), clock)
        refused.enqueue(f"webhook:{url}", message(), "t")
        assert refused.deliver_due() == 0 and rx.requests == []
        allowed = settings_for(tmp_path / "2", delivery_allowed_hosts="localhost")
        outbox = Outbox.open(allowed, clock)
        outbox.enqueue(f"webhook:{url}", message(), "t")
        assert outbox.deliver_due() == 1
    [request] = rx.requests
    assert request["path"] == "/hooks/tok"
    assert request["host"] == f"localhost:{rx.port}"
    assert request["sni"] == "localhost"  # the certificate was checked for the name
    assert json.loads(request["body"])["subject"] == "3 new images of cats"


@pytest.mark.parametrize(
    ("status", "shown", "state"),
    [
        (500, "HTTP 500 Internal Server Error", "retrying"),
        (404, "HTTP 404 Not Found", "failed"),
        (599, "HTTP 599", "retrying"),
        (302, "HTTP 302 Found (redirects are not followed)", "failed"),
    ],
)
def test_reply_text_stays_out_of_the_delivery_history(
    tmp_path: Path, status: int, shown: str, state: str
) -> None:
    leak = {"admin_password": "hunter2-from-the-internal-service", "users": ["root"]}
    settings = settings_for(tmp_path, delivery_allowed_hosts="127.0.0.1")
    with http_receiver([(status, leak)]) as rx, http_receiver() as elsewhere:
        outbox = Outbox.open(settings, clock)
        delivery_id = outbox.enqueue(f"webhook:{rx.url}/hook", message(), "t")
        assert outbox.deliver_due() == 0 and len(rx.requests) == 1
        assert elsewhere.requests == []
    delivery = outbox.get(delivery_id)
    assert delivery is not None and delivery.status == state
    assert (delivery.last_error or "").endswith(f"answered {shown}")
    history = json.dumps([d.to_dict() for d in outbox.history()])
    assert "hunter2" not in history and "admin_password" not in history


def test_replies_quoted_by_an_older_version_are_redacted_on_upgrade(tmp_path: Path) -> None:
    from imagedex.db import Database
    from imagedex.notify.outbox import _SCHEMA

    settings = settings_for(tmp_path)
    older = Database(settings.data_dir / "outbox.sqlite3", [_SCHEMA])  # as it was
    quoted = 'webhook:http://10.0.0.7/…#1a2b3c4d answered HTTP 403: {"aws_secret": "AKIA-leak"}'
    with older.transaction() as db:
        db.execute(
            "INSERT INTO deliveries (id, source, target, target_redacted, subject, message,"
            " status, attempts, last_error, created_at, next_attempt)"
            " VALUES ('d1', 't', 'webhook:http://10.0.0.7/x', 'webhook:…', 's', '{}', 'failed',"
            " 1, ?, 0, 0)",
            (quoted,),
        )
    older.close()
    delivery = Outbox.open(settings).get("d1")
    assert delivery is not None
    assert delivery.last_error == "webhook:http://10.0.0.7/…#1a2b3c4d answered HTTP 403"


# -- folders ----------------------------------------------------------------------------------


def test_folder_targets_outside_the_root_are_refused_on_save(tmp_path: Path) -> None:
    root = tmp_path / "data" / "deliveries"
    settings = settings_for(tmp_path)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    root.mkdir(parents=True)
    (root / "escape").symlink_to(outside)
    for target in (
        "folder:/etc/cron.d",
        f"folder:{root}/../../elsewhere",
        "folder:../elsewhere",
        f"folder:{root}/escape",
        f"folder:{root}/escape/deeper",
        "folder:~",
    ):
        with pytest.raises(ConfigError, match="outside the delivery folder root"):
            create_report(settings, Report(name="w", recipients=(target,)))
    saved = create_report(settings, Report(name="w", recipients=("folder:weekly",)))
    assert saved.recipients == ("folder:weekly",)
    env = imagedex_env(tmp_path / "data")
    refused = run_cli(
        env, "alert", "create", "c", "--label", "cat", "--to", "folder:/etc/cron.d", check=False
    )
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "outside the delivery folder root" in refused.stderr


def test_folder_deliveries_stay_below_the_root_and_follow_no_planted_link(tmp_path: Path) -> None:
    root = tmp_path / "drops"
    settings = settings_for(tmp_path, delivery_folder_root=str(root))
    outbox = Outbox.open(settings, clock)
    inside = outbox.enqueue("folder:weekly/cats", message(), "report:weekly")
    assert outbox.deliver_due() == 1
    assert sorted(p.suffix for p in (root / "weekly" / "cats").iterdir()) == [".json", ".txt"]
    assert outbox.get(inside).status == "sent"  # type: ignore[union-attr]

    outside = tmp_path / "cron.d"
    outside.mkdir()
    stored = outbox.enqueue(f"folder:{outside}", message(), "report:old")  # saved long ago
    (root / "later").symlink_to(outside)  # a link planted after the target was saved
    planted = outbox.enqueue("folder:later", message(), "report:linked")
    assert outbox.deliver_due() == 0
    assert list(outside.iterdir()) == []
    for delivery_id in (stored, planted):
        delivery = outbox.get(delivery_id)
        assert delivery is not None and (delivery.status, delivery.attempts) == ("failed", 1)
        assert "outside the delivery folder root" in (delivery.last_error or "")


def test_a_link_swapped_in_after_the_check_is_not_followed(tmp_path: Path) -> None:
    """The race: a folder passes the check, then is replaced by a link before the files are
    written. The writer opens each folder below the root without following links."""
    from imagedex.notify.folder import open_below

    root = tmp_path / "drops"
    outside = tmp_path / "cron.d"
    outside.mkdir()
    (root / "swap").mkdir(parents=True)
    os.close(open_below(root, Path("swap")))  # a real folder: fine
    (root / "swap").rmdir()
    (root / "swap").symlink_to(outside)
    with pytest.raises(OSError, match=r"symbolic links|Not a directory"):
        open_below(root, Path("swap/deeper"))
    assert list(outside.iterdir()) == []


# -- headers and errors no retry can fix --------------------------------------------------------


def test_a_title_with_line_breaks_is_mailed_on_one_line(tmp_path: Path) -> None:
    title = "cat.jpg\r\nBcc: victim@example.org\r\nX-Evil: 1"
    with smtp_receiver(tmp_path) as smtp:
        settings = settings_for(
            tmp_path, smtp_host=smtp.host, smtp_port=smtp.port, smtp_security="none"
        )
        outbox = Outbox.open(settings, clock)
        delivery_id = outbox.enqueue("mailto:ann@example.org", message(f"New: {title}"), "t")
        assert outbox.deliver_due() == 1
    [mail] = smtp.mails
    assert mail.recipients == ["ann@example.org"]
    assert mail.message["Subject"] == "New: cat.jpg Bcc: victim@example.org X-Evil: 1"
    assert mail.message["Bcc"] is None and mail.message["X-Evil"] is None
    assert outbox.get(delivery_id).attempts == 1  # type: ignore[union-attr]


class GoneTarget(Target):
    """A kind from a plugin that is uninstalled while its deliveries wait."""

    kind = scheme = "gone"

    @classmethod
    def parse(cls, rest: str) -> Self:
        return cls(rest)

    def send(self, message: Message, settings: Settings, now: datetime, delivery_id: str) -> None:
        raise AssertionError("never sent")


def test_errors_no_retry_can_fix_fail_at_once_with_the_reason(tmp_path: Path) -> None:
    TARGET_KINDS.register("gone", GoneTarget)
    try:
        outbox = Outbox.open(settings_for(tmp_path), clock)
        delivery_id = outbox.enqueue("gone:somewhere", message(), "alert:cats")
    finally:
        TARGET_KINDS.unregister("gone")
    assert outbox.deliver_due() == 0
    delivery = outbox.get(delivery_id)
    assert delivery is not None and (delivery.status, delivery.attempts) == ("failed", 1)
    assert "unknown delivery target kind 'gone'" in (delivery.last_error or "")


def test_an_invalid_allow_list_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    env = imagedex_env(
        tmp_path / "data",
        IMAGEDEX_DELIVERY_ALLOWED_HOSTS="10.0.0.0/8, not a host",
        IMAGEDEX_DELIVERY_FOLDER_ROOT="relative/drops",
    )
    refused = run_cli(env, "alert", "list", check=False)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "delivery_allowed_hosts" in refused.stderr and "'not a host'" in refused.stderr
    assert "delivery_folder_root" in refused.stderr and "absolute path" in refused.stderr


# -- an HTTPS receiver that records the name the client asked for (SNI) ------------------------


class HttpsReceiver:
    def __init__(self, port: int, cert_file: Path) -> None:
        self.port = port
        self.cert_file = cert_file
        self.requests: list[dict[str, Any]] = []


@contextmanager
def https_receiver(folder: Path) -> Iterator[HttpsReceiver]:
    cert_file, key_file = make_certificate(folder)
    names: list[str | None] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    context.sni_callback = lambda _sock, name, _ctx: names.append(name)  # type: ignore[assignment,misc]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.requests.append(
                {"path": self.path, "host": self.headers["Host"], "sni": names[-1], "body": body}
            )
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    state = HttpsReceiver(server.server_address[1], cert_file)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


assert os.name == "posix"  # folder confinement relies on O_NOFOLLOW and dir_fd
