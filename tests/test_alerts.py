"""Alerts: per-image rules in the worker, count/silence rules on the scheduler, throttling,
muting, and delivery to a real SMTP server and a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from cli_helpers import free_port, imagedex_env, run_cli, start_up
from conftest import ColourRecognizer, make_document
from http_receiver import Receiver, http_receiver
from imagedex.alerts.evaluate import ImageRuleHook
from imagedex.alerts.jobs import make_handler
from imagedex.alerts.manage import history, mute_rule, open_store, save_rule, unmute_rule
from imagedex.alerts.matching import match_image
from imagedex.alerts.model import Rule
from imagedex.alerts.patterns import MAX_LINE_CHARS
from imagedex.alerts.store import iso
from imagedex.api import create_app
from imagedex.config import Settings, load_settings
from imagedex.documents import ImageDocument, Label, document_id
from imagedex.errors import ConfigError
from imagedex.ingest.upload import upload_bytes
from imagedex.ingest.worker import Worker
from imagedex.notify import Outbox
from imagedex.services import Services
from services import wait_http
from smtp_receiver import SmtpReceiver, smtp_receiver

SECRET = "alert-test-secret"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def doc(
    name: str,
    labels: list[Label] | None = None,
    text: list[str] | None = None,
    moderation: list[dict[str, Any]] | None = None,
    ingested_at: str = "",
) -> ImageDocument:
    return make_document(
        name,
        labels or [],
        bucket="images",
        s3_location=f"file:///bucket/{name}",
        etag="e-" + name,
        text=text or [],
        moderation=moderation or [],
        ingested_at=ingested_at or iso(T0),
    )


def rule(name: str = "r", kind: str = "label", **fields: Any) -> Rule:
    fields.setdefault("actions", ("webhook:http://127.0.0.1:9/hook",))
    return Rule(name=name, kind=kind, **fields).validated()


GOLDEN = Label("golden retriever", 97.2, ("dog", "canine", "animal"), ("goldie",))


# -- pure matching -----------------------------------------------------------------------------


def test_label_rule_matches_the_label_its_parents_and_aliases_case_insensitively() -> None:
    image = doc("IMG_1.jpg", [Label("grass", 99.0), GOLDEN])
    for wanted in ("dog", "DOG", "Golden Retriever", "goldie", "animal"):
        found = match_image(rule(label=wanted, min_confidence=90), image)
        assert found is not None and found.confidence == pytest.approx(97.2), wanted
    found = match_image(rule(label="dog", min_confidence=90), image)
    assert found is not None and found.headline() == "dog (golden retriever) detected"
    assert match_image(rule(label="cat", min_confidence=0), image) is None
    assert match_image(rule(label="retriever", min_confidence=0), image) is None  # whole names


def test_label_confidence_boundary_is_inclusive() -> None:
    image = doc("a.jpg", [Label("dog", 89.9)])
    assert match_image(rule(label="dog", min_confidence=90), image) is None
    exact = doc("b.jpg", [Label("dog", 90.0)])
    assert match_image(rule(label="dog", min_confidence=90), exact) is not None


def test_moderation_rule_any_label_or_one_label_at_or_above_confidence() -> None:
    unsafe = doc(
        "u.jpg",
        moderation=[
            {"label": "Suggestive", "confidence": 71.0, "parent": ""},
            {"label": "Explicit Nudity", "confidence": 88.0, "parent": "Explicit"},
        ],
    )
    anything = match_image(rule(kind="moderation", min_confidence=80), unsafe)
    assert anything is not None and anything.what == "Explicit Nudity"
    assert anything.confidence == 88.0
    by_parent = rule(kind="moderation", moderation_label="explicit", min_confidence=50)
    assert match_image(by_parent, unsafe) is not None
    suggestive = rule(kind="moderation", moderation_label="Suggestive", min_confidence=71)
    assert match_image(suggestive, unsafe) is not None
    assert match_image(replace(suggestive, min_confidence=71.1), unsafe) is None
    assert match_image(rule(kind="moderation", min_confidence=0), doc("safe.jpg")) is None


def test_text_rule_substring_and_regex_over_ocr_lines_and_title() -> None:
    image = doc("scan-0042.png", text=["ACME Corp", "Invoice #  12345", "Total 99.00"])
    substring = match_image(rule(kind="text", pattern="invoice"), image)
    assert substring is not None and substring.what == "Invoice"
    pattern = r"invoice\s+#?\s*\d{3,8}"
    regex = match_image(rule(kind="text", pattern=pattern, regex=True), image)
    assert regex is not None and regex.what == "Invoice #  12345"
    title = match_image(rule(kind="text", pattern=r"scan-\d+", regex=True), image)
    assert title is not None and title.what == "scan-0042"
    assert match_image(rule(kind="text", pattern="receipt"), image) is None
    # a plain substring is not a regex: the dot is literal
    assert match_image(rule(kind="text", pattern="99x00"), image) is None
    assert match_image(rule(kind="text", pattern="99.00"), image) is not None


def test_bad_and_catastrophic_patterns_are_refused_with_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="invalid regular expression"):
        rule(kind="text", pattern="invoice (", regex=True)
    for slow in ("(a+)+$", "(a|aa)*b", "([a-z]+)*x", "(\\w+\\s?)*$"):
        with pytest.raises(ConfigError, match="exponential time"):
            rule(kind="text", pattern=slow, regex=True)
    with pytest.raises(ConfigError, match="longer than 200"):
        rule(kind="text", pattern="a" * 201)
    # a slow pattern is harmless as a plain substring
    assert rule(kind="text", pattern="(a+)+$").pattern == "(a+)+$"


def test_a_slow_pattern_the_structural_check_allows_runs_out_of_time_not_the_worker() -> None:
    slow = rule(kind="text", pattern="a*a*a*a*a*b", regex=True)  # polynomial, but ~n^5
    lines = ["a" * MAX_LINE_CHARS] * 20
    started = time.perf_counter()
    assert match_image(slow, doc("aaaa.png", text=lines)) is None
    assert time.perf_counter() - started < 2.0  # 20 lines x the per-search limit, not minutes
    assert match_image(slow, doc("ab.png", text=["xxaab"])) is not None  # it still matches


def test_text_is_bounded_so_a_huge_ocr_line_cannot_stall_the_worker() -> None:
    needle = rule(kind="text", pattern=r"x\d+y", regex=True)
    far = doc("big.png", text=["a" * 1_000_000 + "x1y"])
    started = time.perf_counter()
    assert match_image(needle, far) is None  # beyond the scanned part of the line
    assert time.perf_counter() - started < 0.1
    near = doc("near.png", text=["a" * (MAX_LINE_CHARS - 10) + "x1y" + "a" * 10_000])
    assert match_image(needle, near) is not None


def test_rule_validation_names_what_is_wrong() -> None:
    with pytest.raises(ConfigError, match="slug"):
        rule(name="Has Spaces")
    with pytest.raises(ConfigError, match="needs a label"):
        rule(label=" ")
    with pytest.raises(ConfigError, match="at least one action"):
        Rule(name="x", kind="label", label="dog").validated()
    with pytest.raises(ConfigError, match="must not carry credentials"):
        rule(label="dog", actions=("webhook:https://user:pw@example.org/x",))
    with pytest.raises(ConfigError, match="e-mail"):
        rule(label="dog", actions=("mailto:not-an-address",))
    with pytest.raises(ConfigError):
        rule(kind="count", query="", schedule="every tuesday-ish")
    with pytest.raises(ConfigError, match="comparison"):
        rule(kind="count", comparison="==")
    with pytest.raises(ConfigError, match="duration"):
        Rule.from_dict({"name": "x", "kind": "silence", "window": "soon"})
    assert rule(kind="count", threshold=5).schedule == "*/5 * * * *"
    assert Rule.from_dict({"name": "x", "kind": "silence", "window": "6h"}).window == 21600


# -- delivery fixtures ---------------------------------------------------------------------------


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpReceiver]:
    with smtp_receiver(tmp_path) as server:
        yield server


@pytest.fixture
def hook_receiver() -> Iterator[Receiver]:
    with http_receiver() as receiver:
        yield receiver


def alert_settings(tmp_path: Path, smtp_port: int, **extra: Any) -> Settings:
    return load_settings(
        environ={},
        data_dir=tmp_path / "data",
        retry_delay=0.0,
        poll_interval=0.05,
        semantic=False,
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_security="none",
        webhook_secret=SECRET,
        public_url="https://imagedex.example.org",
        delivery_retry_delay=0.0,
        delivery_max_attempts=2,
        delivery_allowed_hosts="127.0.0.1",  # the receivers are on this machine
        **extra,
    )


def posted(receiver: Receiver) -> list[dict[str, Any]]:
    """The JSON bodies that arrived, each checked against its HMAC signature."""
    bodies = []
    for request in receiver.requests:
        timestamp = request.headers["x-imagedex-timestamp"]
        expected = hmac.new(
            SECRET.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256
        ).hexdigest()
        assert request.headers["x-imagedex-signature"] == "sha256=" + expected
        bodies.append(json.loads(request.body))
    return bodies


def deliver_all(settings: Settings) -> None:
    outbox = Outbox.open(settings)
    outbox.deliver_due()
    outbox.close()


# -- the real pipeline -----------------------------------------------------------------------


def test_worker_fires_a_label_rule_to_a_signed_webhook_and_smtp(
    tmp_path: Path, photo_dir: Path, smtp: SmtpReceiver, hook_receiver: Receiver
) -> None:
    settings = alert_settings(tmp_path, smtp.port)
    save_rule(
        settings,
        Rule(
            name="dogs",
            kind="label",
            label="dog",
            min_confidence=20,
            actions=(
                f"webhook:{hook_receiver.url}/hook",
                "mailto:ops@example.org",
                f"slack:{hook_receiver.url}/slack",
            ),
        ),
        datetime.now(UTC),
    )
    services = Services.from_settings(settings)
    try:
        for name in ("puppy.jpg", "chelsea.jpg", "coffee.jpg"):
            upload_bytes(services, name, (photo_dir / name).read_bytes())
        worker = Worker(services)  # the default recognizers: ImageNet labeller + moderation
        worker.run(once=True)
        assert worker.stats.indexed == 3
    finally:
        services.close()
    deliver_all(settings)

    slack = [r for r in hook_receiver.requests if r.path == "/slack"]
    hook_receiver.requests[:] = [r for r in hook_receiver.requests if r.path == "/hook"]
    (body,) = posted(hook_receiver)
    puppy_id = document_id("images", "puppy.jpg")
    (slack_post,) = slack
    blocks = json.dumps(json.loads(slack_post.body)["blocks"])
    assert body["image_url"] in blocks and body["link"] in blocks
    assert body["payload"]["rule"] == "dogs" and body["payload"]["kind"] == "label"
    assert body["payload"]["document"]["title"] == "puppy.jpg"
    assert body["payload"]["document"]["id"] == puppy_id
    assert body["subject"].startswith("imagedex alert: dog")
    assert body["subject"].endswith("%)") and "in puppy.jpg" in body["subject"]
    assert body["link"] == f"https://imagedex.example.org/images/{puppy_id}"
    assert body["image_url"].startswith(
        f"https://imagedex.example.org/api/images/{puppy_id}/thumbnail?expires="
    )
    (mail,) = smtp.mails
    assert mail.recipients == ["ops@example.org"]
    assert mail.message["Subject"] == body["subject"]
    plain = mail.message.get_body(("plain",))
    assert plain is not None and "puppy.jpg" in plain.get_content()
    (alert,) = history(settings)
    assert alert["rule"] == "dogs" and alert["doc_ids"] == [puppy_id]
    assert alert["status"] == "sent" and len(alert["deliveries"]) == 3


def test_reprocessing_an_image_does_not_alert_twice(tmp_path: Path) -> None:
    settings = alert_settings(tmp_path, free_port())
    save_rule(settings, rule("reds", label="red", min_confidence=90, throttle=0), T0)
    services = Services.from_settings(settings)
    try:
        upload_bytes(services, "red.png", png((255, 0, 0)))
        Worker(services, recognizers=[ColourRecognizer()]).run(once=True)
        assert len(history(settings)) == 1
        from imagedex.ingest.reprocess import Selection, enqueue

        assert enqueue(services, Selection(force=True)) == 1
        worker = Worker(services, recognizers=[ColourRecognizer()])
        worker.run(once=True)
        assert worker.stats.indexed == 1  # really analyzed and indexed again
        assert len(history(settings)) == 1
        # new content under the same key is a new image: it alerts
        upload_bytes(services, "red.png", png((250, 0, 0)))
        Worker(services, recognizers=[ColourRecognizer()]).run(once=True)
        assert len(history(settings)) == 2
    finally:
        services.close()


def png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(buf, "PNG")
    return buf.getvalue()


def test_smtp_down_never_slows_or_fails_ingestion_and_failures_show_in_history(
    tmp_path: Path,
) -> None:
    settings = alert_settings(tmp_path, free_port())  # nothing listens there
    save_rule(
        settings, rule("reds", label="red", actions=("mailto:ops@example.org",), throttle=0), T0
    )
    services = Services.from_settings(settings)
    try:
        for i in range(12):
            upload_bytes(services, f"red-{i}.png", png((255, 0, 0)))
        started = time.perf_counter()
        worker = Worker(services, recognizers=[ColourRecognizer()])
        worker.run(once=True)
        elapsed = time.perf_counter() - started
        assert worker.stats.indexed == 12 and services.index.count() == 12
        assert services.queue.stats().dead == 0
    finally:
        services.close()
    assert elapsed < 10  # no SMTP connection happens inside the worker
    assert len(history(settings)) == 12
    assert {a["status"] for a in history(settings)} == {"queued"}
    deliver_all(settings)
    statuses = {a["status"] for a in history(settings)}
    assert statuses == {"retrying"}
    error = history(settings)[0]["deliveries"][0]["last_error"]
    assert "SMTP 127.0.0.1" in error
    deliver_all(settings)  # the second (last) attempt fails too
    assert {a["status"] for a in history(settings)} == {"failed"}


def test_a_broken_rule_store_is_logged_and_ingestion_goes_on(tmp_path: Path) -> None:
    settings = alert_settings(tmp_path, free_port())
    save_rule(settings, rule("reds", label="red"), T0)
    (settings.data_dir / "alerts.sqlite3").write_bytes(b"this is not a database" * 100)
    services = Services.from_settings(settings)
    try:
        upload_bytes(services, "red.png", png((255, 0, 0)))
        worker = Worker(services, recognizers=[ColourRecognizer()])
        worker.run(once=True)
        assert worker.stats.indexed == 1 and services.index.count() == 1
        assert services.queue.stats().dead == 0
    finally:
        services.close()


# -- throttling and muting, with an injected clock ----------------------------------------------


@pytest.fixture
def clocked(tmp_path: Path, hook_receiver: Receiver) -> Iterator[tuple[Services, Clock]]:
    settings = alert_settings(tmp_path, free_port())
    services = Services.from_settings(settings)
    clock = Clock()
    services.indexed_hooks()[:] = [ImageRuleHook(services.settings, clock=clock)]
    yield services, clock
    services.close()


def test_throttle_one_notification_per_period_reporting_suppressed_matches(
    clocked: tuple[Services, Clock], hook_receiver: Receiver
) -> None:
    services, clock = clocked
    target = f"webhook:{hook_receiver.url}/dogs"
    save_rule(services.settings, rule("dogs", label="dog", actions=(target,)), clock())
    hook = services.indexed_hooks()[0]
    for i in range(5):
        hook([doc(f"dog-{i}.jpg", [GOLDEN])])
        clock.advance(minutes=10)
    deliver_all(services.settings)
    assert len(posted(hook_receiver)) == 1
    assert open_store(services.settings).state("dogs").suppressed == 4

    clock.advance(minutes=15)  # 65 minutes after the first notification
    hook([doc("dog-5.jpg", [GOLDEN])])
    deliver_all(services.settings)
    first, second = posted(hook_receiver)
    assert first["payload"]["suppressed"] == 0
    assert second["payload"]["suppressed"] == 4
    assert "4 further matches were suppressed" in second["text"]
    assert second["payload"]["document"]["title"] == "dog-5.jpg"
    alerts = history(services.settings, "dogs")
    assert [a["suppressed"] for a in alerts] == [4, 0]


def test_muted_rule_sends_nothing_until_unmuted_or_the_mute_expires(
    clocked: tuple[Services, Clock], hook_receiver: Receiver
) -> None:
    services, clock = clocked
    settings = services.settings
    target = f"webhook:{hook_receiver.url}/m"
    save_rule(settings, rule("dogs", label="dog", actions=(target,), throttle=0), clock())
    hook = services.indexed_hooks()[0]
    mute_rule(settings, "dogs", clock())
    hook([doc("a.jpg", [GOLDEN])])
    assert history(settings) == []
    unmute_rule(settings, "dogs", clock())
    hook([doc("b.jpg", [GOLDEN])])
    assert len(history(settings)) == 1
    mute_rule(settings, "dogs", clock(), "2h")
    hook([doc("c.jpg", [GOLDEN])])
    assert len(history(settings)) == 1
    throttled = replace(open_store(settings).get("dogs"), throttle=3600)
    open_store(settings).put(throttled, replace=True, keep_state=True)
    unmute_rule(settings, "dogs", clock())
    hook([doc("c2.jpg", [GOLDEN])])  # unmuting keeps the throttle: b.jpg alerted just now
    assert len(history(settings)) == 1
    mute_rule(settings, "dogs", clock(), "2h")
    clock.advance(hours=2, seconds=1)
    hook([doc("d.jpg", [GOLDEN])])
    assert [a["doc_ids"][0] for a in history(settings)] == [
        document_id("images", "d.jpg"),
        document_id("images", "b.jpg"),
    ]
    deliver_all(settings)
    assert [b["payload"]["document"]["title"] for b in posted(hook_receiver)] == [
        "b.jpg",
        "d.jpg",
    ]


def test_disabled_and_aggregate_rules_are_ignored_by_the_image_hook(
    clocked: tuple[Services, Clock],
) -> None:
    services, clock = clocked
    save_rule(services.settings, rule("off", label="dog", enabled=False), clock())
    save_rule(services.settings, rule("busy", kind="count", threshold=0), clock())
    services.indexed_hooks()[0]([doc("a.jpg", [GOLDEN])])
    assert history(services.settings) == []


def test_the_hook_costs_next_to_nothing_without_rules_and_little_with_many(
    clocked: tuple[Services, Clock],
) -> None:
    services, clock = clocked
    hook = services.indexed_hooks()[0]
    batch = [doc(f"img-{i}.jpg", [Label("tabby", 90.0, ("cat", "animal"))]) for i in range(8)]
    started = time.perf_counter()
    for _ in range(1000):
        hook(batch)
    no_rules = (time.perf_counter() - started) / 1000
    assert not (services.settings.data_dir / "alerts.sqlite3").exists()
    for i in range(20):
        save_rule(services.settings, rule(f"r{i}", label=f"label-{i}"), clock())
    started = time.perf_counter()
    for _ in range(200):
        hook(batch)
    twenty_rules = (time.perf_counter() - started) / 200
    print(
        f"hook per batch of 8: no rules {no_rules * 1e6:.1f} us, 20 rules {twenty_rules * 1e6:.0f} us"
    )
    assert no_rules < 0.0005 and twenty_rules < 0.005
    assert history(services.settings) == []


# -- aggregate rules ---------------------------------------------------------------------------


def index_at(services: Services, names: list[str], moment: datetime) -> None:
    services.index.upsert([doc(n, [Label("person", 95.0)], ingested_at=iso(moment)) for n in names])


def test_count_rule_fires_once_on_crossing_and_respects_the_throttle(
    tmp_path: Path, hook_receiver: Receiver
) -> None:
    settings = alert_settings(tmp_path, free_port())
    services = Services.from_settings(settings)
    clock = Clock()
    target = f"webhook:{hook_receiver.url}/count"
    busy = rule("busy", kind="count", query="", window=3600, threshold=3, actions=(target,))
    save_rule(settings, busy, clock())
    handler = make_handler(services, clock=clock)
    try:
        index_at(services, ["a", "b"], clock.now - timedelta(minutes=30))
        index_at(services, ["old1", "old2", "old3"], clock.now - timedelta(hours=3))
        result = handler.run("alert:busy")
        assert result is not None and result.value == 2 and not result.firing
        clock.advance(minutes=5)
        index_at(services, ["c", "d"], clock.now - timedelta(minutes=1))
        result = handler.run("alert:busy")
        assert result is not None and result.value == 4 and result.firing
        assert result.alert is not None and result.alert.value == 4
        clock.advance(minutes=5)
        index_at(services, ["e"], clock.now)
        result = handler.run("alert:busy")
        assert result is not None and result.value == 5 and result.alert is None  # still above
        clock.advance(minutes=40)  # a and b leave the window: 3, not above 3
        result = handler.run("alert:busy")
        assert result is not None and result.value == 3 and not result.firing
        clock.advance(minutes=5)
        index_at(services, ["f"], clock.now)
        result = handler.run("alert:busy")  # a new crossing, 55 min after the alert
        assert result is not None and result.firing and result.alert is None
        assert open_store(settings).state("busy").suppressed == 1
    finally:
        services.close()
    deliver_all(settings)
    (body,) = posted(hook_receiver)
    assert body["payload"]["value"] == 4 and body["payload"]["threshold"] == 3
    assert body["payload"]["comparison"] == ">"
    assert "4 images matching [all] in the last 1h (> 3)" in body["subject"]
    (alert,) = history(settings, "busy")
    assert alert["value"] == 4 and alert["threshold"] == 3 and alert["status"] == "sent"


def test_silence_rule_fires_when_nothing_arrives_for_the_period(
    tmp_path: Path, smtp: SmtpReceiver
) -> None:
    settings = alert_settings(tmp_path, smtp.port)
    services = Services.from_settings(settings)
    clock = Clock()
    quiet = rule("quiet", kind="silence", window=6 * 3600, actions=("mailto:ops@example.org",))
    save_rule(settings, quiet, clock())
    handler = make_handler(services, clock=clock)
    try:
        index_at(services, ["a"], clock.now - timedelta(hours=1))
        result = handler.run("alert:quiet")
        assert result is not None and not result.firing and result.value == 1
        clock.advance(hours=5, minutes=1)  # a arrived 6h01 ago
        result = handler.run("alert:quiet")
        assert result is not None and result.firing and result.alert is not None
        clock.advance(hours=1)
        assert handler.run("alert:quiet").alert is None  # type: ignore[union-attr]
        index_at(services, ["b"], clock.now)
        result = handler.run("alert:quiet")
        assert result is not None and not result.firing
    finally:
        services.close()
    deliver_all(settings)
    (mail,) = smtp.mails
    assert mail.message["Subject"] == "imagedex alert: quiet: no new images for 6h"


def test_aggregate_rule_runs_through_the_scheduler(tmp_path: Path) -> None:
    from imagedex.scheduling.scheduler import Scheduler

    settings = alert_settings(tmp_path, free_port())
    services = Services.from_settings(settings)
    clock = Clock(T0 - timedelta(minutes=1))
    save_rule(settings, rule("quiet", kind="silence", window=3600, schedule="*/5 * * * *"), T0)
    scheduler = Scheduler(settings.data_dir / "schedule.sqlite3", clock=clock)
    scheduler.register("alert", make_handler(services, clock=clock))
    try:
        (job,) = scheduler.jobs("alert")
        assert job.id == "alert:quiet"
        clock.advance(minutes=6)
        (run,) = scheduler.run_pending()
        assert run.status == "ok", run.error
        (alert,) = history(settings)
        assert alert["rule"] == "quiet" and alert["value"] == 0
        from imagedex.alerts.manage import delete_rule

        delete_rule(settings, "quiet")
        assert scheduler.jobs("alert") == []
    finally:
        scheduler.close()
        services.close()


# -- CLI and API -------------------------------------------------------------------------------


def test_cli_create_list_mute_test_history_delete(tmp_path: Path, smtp: SmtpReceiver) -> None:
    env = imagedex_env(
        tmp_path / "data",
        IMAGEDEX_SMTP_HOST="127.0.0.1",
        IMAGEDEX_SMTP_PORT=str(smtp.port),
        IMAGEDEX_SMTP_SECURITY="none",
    )
    run_cli(
        env, "alert", "create", "dogs", "--label", "dog", "--min-confidence", "90",
        "--to", "mailto:ops@example.org", "--throttle", "2h",
    )  # fmt: skip
    run_cli(env, "alert", "create", "unsafe", "--moderation", "--to", "mailto:ops@example.org")
    run_cli(
        env, "alert", "create", "busy", "--count", "", "--window", "1h", "--above", "50",
        "--to", "mailto:ops@example.org",
    )  # fmt: skip
    listed = json.loads(run_cli(env, "alert", "list", "--json").stdout)["rules"]
    assert [(r["name"], r["kind"]) for r in listed] == [
        ("busy", "count"),
        ("dogs", "label"),
        ("unsafe", "moderation"),
    ]
    assert listed[1]["watches"] == "label dog >= 90%" and listed[1]["throttle"] == "2h"
    shown = json.loads(run_cli(env, "alert", "show", "busy", "--json").stdout)
    assert shown["comparison"] == ">" and shown["threshold"] == 50
    assert shown["schedule"] == "*/5 * * * *"

    bad = run_cli(env, "alert", "create", "x", "--text", "(a+)+", "--regex", "--to",
                  "mailto:a@b.org", check=False)  # fmt: skip
    assert bad.returncode != 0 and "exponential time" in bad.stderr
    two = run_cli(env, "alert", "create", "y", "--label", "a", "--text", "b", "--to",
                  "mailto:a@b.org", check=False)  # fmt: skip
    assert two.returncode == 2 and "exactly one of" in two.stderr
    dup = run_cli(env, "alert", "create", "dogs", "--label", "dog", "--to", "mailto:a@b.org",
                  check=False)  # fmt: skip
    assert dup.returncode != 0 and "already exists" in dup.stderr

    run_cli(env, "alert", "mute", "dogs", "--for", "2h")
    listed = json.loads(run_cli(env, "alert", "list", "--json").stdout)["rules"]
    assert [r["muted"] for r in listed] == [False, True, False]
    run_cli(env, "alert", "unmute", "dogs")

    run_cli(env, "alert", "test", "dogs")
    deliver_all(load_settings(environ=env))  # what `imagedex up` does in its background loop
    (mail,) = smtp.mails
    assert mail.message["Subject"] == "imagedex alert: test of rule dogs"
    alerts = json.loads(run_cli(env, "alert", "history", "dogs", "--json").stdout)["alerts"]
    assert alerts[0]["status"] == "sent" and alerts[0]["rule"] == "dogs"

    run_cli(env, "alert", "delete", "dogs")
    missing = run_cli(env, "alert", "show", "dogs", check=False)
    assert missing.returncode != 0 and "no alert rule named 'dogs'" in missing.stderr
    assert "Usage" in run_cli(env, "alert", "create", "--help").stdout


def test_api_rules_crud_mute_and_history(services: Services) -> None:
    client = TestClient(create_app(services), base_url="http://127.0.0.1")
    body = {"kind": "label", "label": "cat", "min_confidence": 80, "actions": ["mailto:a@b.org"],
            "throttle": "30m"}  # fmt: skip
    created = client.post("/api/alerts/cats", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["throttle"] == 1800 and created.json()["summary"] == "label cat >= 80%"
    assert client.post("/api/alerts/cats", json=body).status_code == 409
    bad = client.post(
        "/api/alerts/regex", json={**body, "kind": "text", "pattern": "(", "regex": True}
    )
    assert bad.status_code == 400 and "invalid regular expression" in bad.json()["detail"]
    assert client.post("/api/alerts/Bad%20Name", json=body).status_code == 400
    assert client.put("/api/alerts/nope", json=body).status_code == 404

    updated = client.put("/api/alerts/cats", json={**body, "min_confidence": 95})
    assert updated.status_code == 200 and updated.json()["min_confidence"] == 95
    assert client.post("/api/alerts/cats/mute", json={"period": "1h"}).json()["muted"] is True
    assert client.get("/api/alerts").json()["rules"][0]["muted"] is True
    assert client.post("/api/alerts/cats/unmute").json()["muted"] is False
    assert client.get("/api/alerts/cats").json()["state"]["firing"] is False
    assert client.get("/api/alerts/history").json() == {"alerts": []}
    assert client.delete("/api/alerts/cats").json() == {"deleted": "cats"}
    assert client.delete("/api/alerts/cats").status_code == 404
    assert client.get("/api/alerts").json() == {"rules": []}


def test_count_rule_counts_only_images_matching_its_query(tmp_path: Path) -> None:
    settings = alert_settings(tmp_path, free_port())
    services = Services.from_settings(settings)
    clock = Clock()
    people = rule("people", kind="count", query="label:person confidence>=90", threshold=1)
    save_rule(settings, replace(people, comparison=">="), clock())
    with pytest.raises(ConfigError, match="count query"):
        save_rule(settings, replace(people, name="bad", query="confidence>>x"), clock())
    handler = make_handler(services, clock=clock)
    try:
        recent = iso(clock.now - timedelta(minutes=5))
        services.index.upsert(
            [
                doc("cat.jpg", [Label("tabby", 99.0, ("cat",))], ingested_at=recent),
                doc("blurry.jpg", [Label("person", 60.0)], ingested_at=recent),
            ]
        )
        result = handler.run("alert:people")
        assert result is not None and result.value == 0 and not result.firing
        index_at(services, ["walker.jpg"], clock.now - timedelta(minutes=1))
        result = handler.run("alert:people")
        assert result is not None and result.value == 1 and result.alert is not None
    finally:
        services.close()


def test_api_roles_viewers_read_admins_change(tmp_path: Path) -> None:
    from imagedex.access.store import AccessStore

    settings = load_settings(environ={}, data_dir=tmp_path / "data", auth="on")
    services = Services.from_settings(settings)
    keys = AccessStore.open(settings)
    viewer = {"Authorization": f"Bearer {keys.create_key('v', 'viewer')[1]}"}
    editor = {"Authorization": f"Bearer {keys.create_key('e', 'editor')[1]}"}
    admin = {"Authorization": f"Bearer {keys.create_key('a', 'admin')[1]}"}
    keys.close()
    slack = "slack:https://hooks.slack.com/services/T000/B000/sEcReTtOkEn"
    body = {"kind": "moderation", "actions": ["mailto:a@b.org", slack]}
    try:
        client = TestClient(create_app(services), base_url="http://127.0.0.1")
        assert client.get("/api/alerts").status_code == 401
        assert client.post("/api/alerts/unsafe", json=body, headers=viewer).status_code == 403
        assert client.post("/api/alerts/unsafe", json=body, headers=editor).status_code == 403
        assert client.post("/api/alerts/unsafe", json=body, headers=admin).status_code == 201
        assert client.post("/api/alerts/unsafe/mute", headers=editor).status_code == 403
        assert client.delete("/api/alerts/unsafe", headers=viewer).status_code == 403
        listed = client.get("/api/alerts", headers=viewer).json()["rules"]
        assert [r["name"] for r in listed] == ["unsafe"]
        shown = client.get("/api/alerts/unsafe", headers=viewer).text + str(listed)
        assert "sEcReTtOkEn" not in shown and "hooks.slack.com" in shown  # token never shown
        from imagedex.alerts.manage import send_test

        send_test(settings, "unsafe", datetime.now(UTC))  # one history row with deliveries
        seen = client.get("/api/alerts/history", headers=viewer).json()["alerts"][0]["deliveries"]
        full = client.get("/api/alerts/history", headers=admin).json()["alerts"][0]["deliveries"]
        assert len(seen) == len(full) == 2
        assert all("last_error" not in d for d in seen)  # a reply may quote an internal service
        assert all("last_error" in d for d in full)
    finally:
        services.close()


def test_imagedex_up_alerts_on_an_upload_with_a_thumbnail_that_opens(
    tmp_path: Path, photo_dir: Path, hook_receiver: Receiver
) -> None:
    port = free_port()
    env = imagedex_env(
        tmp_path / "data",
        IMAGEDEX_SEMANTIC="false",
        IMAGEDEX_WEBHOOK_SECRET=SECRET,
        IMAGEDEX_PORT=str(port),
        IMAGEDEX_AUTH="on",
        IMAGEDEX_DELIVERY_ALLOWED_HOSTS="127.0.0.1",
    )
    run_cli(
        env, "alert", "create", "dogs", "--label", "dog", "--min-confidence", "20",
        "--to", f"webhook:{hook_receiver.url}/up",
    )  # fmt: skip
    server = start_up(env, port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/healthz", process=server)
        run_cli(env, "ingest", str(photo_dir / "chelsea.jpg"), str(photo_dir / "puppy.jpg"))
        deadline = time.monotonic() + 120
        while not hook_receiver.requests:
            assert time.monotonic() < deadline, "no alert arrived"
            assert server.poll() is None, "imagedex up exited"
            time.sleep(0.2)
        (body,) = posted(hook_receiver)
        assert body["payload"]["document"]["title"] == "puppy.jpg"
        assert body["image_url"].startswith(base + "/api/images/")
        unsigned = body["image_url"].partition("?")[0]
        assert httpx.get(unsigned).status_code == 401  # access control is on
        thumbnail = httpx.get(body["image_url"])  # the signed link needs no login
        assert thumbnail.status_code == 200
        assert Image.open(io.BytesIO(thumbnail.content)).size[0] <= 320
    finally:
        server.terminate()
        server.wait(timeout=30)
