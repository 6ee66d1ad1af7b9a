"""Reports end to end: real photos in a local store, a real SQLite index, the files parsed back
(pypdf, openpyxl, Pillow, csv), deliveries to a real SMTP server, a real HTTP receiver and a
folder, and schedules driven by an injected clock."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pypdf
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from cli_helpers import free_port, imagedex_env, run_cli
from conftest import CHROMIUM, CHROMIUM_ARGS
from http_receiver import http_receiver
from imagedex.config import Settings, load_settings
from imagedex.documents import ImageDocument, Label, SearchQuery, document_id
from imagedex.errors import ConfigError
from imagedex.notify import Outbox
from imagedex.reports.data import gather
from imagedex.reports.manage import create_report, delete_report, update_report
from imagedex.reports.model import Report
from imagedex.reports.render_charts import charts_png
from imagedex.reports.render_csv import render_csv
from imagedex.reports.render_pdf import render_pdf
from imagedex.reports.render_xlsx import render_xlsx
from imagedex.reports.run import run_report
from imagedex.reports.store import ReportStore
from imagedex.services import Services
from smtp_receiver import smtp_receiver

# Monday 2 March 2026, 08:00 in Paris (UTC+1 in winter)
MONDAY_0800_PARIS = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)

# (file, labels (name, confidence, parents), days before MONDAY_0800_PARIS, moderation)
PHOTOS: list[tuple[str, list[tuple[str, float, tuple[str, ...]]], float, list[dict[str, Any]]]] = [
    ("chelsea.jpg", [("tabby cat", 92.0, ("cat", "animal")), ("grass", 30.0, ())], 1, []),
    ("puppy.jpg", [("golden retriever", 88.0, ("dog", "animal")), ("grass", 40.0, ())], 2, []),
    ("gold_fish.jpg", [("goldfish", 81.0, ("fish", "animal"))], 3, []),
    ("coffee.jpg", [("espresso", 97.0, ("coffee", "beverage")), ("cup", 61.0, ())], 4, []),
    ("astronaut.jpg", [("astronaut", 77.0, ("person",))], 5, []),
    ("rocket.jpg", [("rocket", 85.0, ("vehicle",))], 6, []),
    ("china.jpg", [("pagoda", 66.0, ("building",))], 6.5, []),
    (
        "flower.jpg",
        [("daisy", 58.0, ("flower", "plant"))],
        9,
        [{"label": "Suggestive", "confidence": 70.0}],
    ),
    ("guitar.jpg", [("acoustic guitar", 90.0, ("instrument",))], 12, []),
    ("tent.jpg", [("tent", 73.0, ("shelter",)), ("grass", 35.0, ())], 20, []),
]
ANIMALS = {"chelsea.jpg", "puppy.jpg", "gold_fish.jpg"}


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def index_photos(services: Services, photo_dir: Path) -> list[ImageDocument]:
    documents = []
    for name, labels, days_before, moderation in PHOTOS:
        data = (photo_dir / name).read_bytes()
        info = services.store.put(f"photos/{name}", data, "image/jpeg")
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
        documents.append(
            ImageDocument(
                id=document_id(services.store.bucket, f"photos/{name}"),
                bucket=services.store.bucket,
                key=f"photos/{name}",
                title=name.removesuffix(".jpg").replace("_", " ").title(),
                s3_location=services.store.location(f"photos/{name}"),
                etag=info.etag,
                size=len(data),
                content_type="image/jpeg",
                width=width,
                height=height,
                ingested_at=_iso(MONDAY_0800_PARIS - timedelta(days=days_before)),
                labels=[Label(n, c, p) for n, c, p in labels],
                moderation=moderation,
                description=f"a photo of {labels[0][0]}",
            )
        )
    services.index.upsert(documents)
    return documents


def _settings(data_dir: Path, **overrides: Any) -> Settings:
    # the tests' receivers are on this machine; their drop folders lie beside the data dir
    local: dict[str, Any] = {
        "delivery_allowed_hosts": "127.0.0.1",
        "delivery_folder_root": str(data_dir.parent),
    }
    return load_settings(
        environ={},
        data_dir=data_dir,
        auth="off",
        delivery_retry_delay=60.0,
        public_url="https://imagedex.example.org",
        **{**local, **overrides},
    )


@pytest.fixture
def indexed(tmp_path: Path, photo_dir: Path) -> Iterator[Services]:
    services = Services.from_settings(_settings(tmp_path / "data"))
    index_photos(services, photo_dir)
    yield services
    services.close()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


# -- rendering: every format parses back with the expected counts -------------------------------


def test_every_format_parses_back_with_the_matching_counts(indexed: Services) -> None:
    report = Report(name="animals", title="Animals this week ★", query="label:animal", window="7d")
    data = gather(indexed, report, MONDAY_0800_PARIS, thumbnails=True)
    assert data.total == 3
    assert {row.title for row in data.rows} == {"Chelsea", "Puppy", "Gold Fish"}
    assert len(data.thumbnails) == 3  # decoded from the real photos

    pdf = pypdf.PdfReader(io.BytesIO(render_pdf(data)))
    assert len(pdf.pages) >= 2
    text = "\n".join(page.extract_text() for page in pdf.pages)
    assert "Animals this week ★" in text
    assert "Matching images 3" in text
    assert "label:animal" in text
    top = data.charts.labels[0]
    assert top == ("grass", 2)  # the one label two of the three animals share
    assert f"Top label {top[0]} ({top[1]} images)" in text
    assert "golden retriever (88%)" in text
    # the thumbnails are embedded images, one per listed image (plus the chart images)
    embedded = sum(len(page.images) for page in pdf.pages)
    assert embedded >= 3 + 5

    book = openpyxl.load_workbook(io.BytesIO(render_xlsx(data)))
    images = book["Images"]
    header = [cell.value for cell in images[1]]
    assert header[:4] == ["id", "title", "key", "ingested_at"]
    assert header[4:8] == ["label 1", "confidence 1", "label 2", "confidence 2"]
    assert images.freeze_panes == "A2"
    assert images.max_row - 1 == 3
    puppy = next(row for row in images.iter_rows(min_row=2, values_only=True) if row[1] == "Puppy")
    assert puppy[4:8] == ("golden retriever", 88.0, "grass", 40.0)
    facets = indexed.index.facets(
        SearchQuery(labels=("animal",), date_from=data.date_from, date_to=data.date_to), labels=50
    )
    sheet = [(r[0], r[1]) for r in book["Labels"].iter_rows(min_row=2, values_only=True)]
    assert sheet == [(c.label, c.count) for c in facets.labels]

    png = Image.open(io.BytesIO(charts_png(data)))
    assert png.format == "PNG"
    assert 800 <= png.width <= 1600 and 700 <= png.height <= 1400

    rows = list(csv.reader(io.StringIO(render_csv(data).decode("utf-8-sig"))))
    assert rows[0] == header
    assert len(rows) == 4
    assert {r[1] for r in rows[1:]} == {"Chelsea", "Puppy", "Gold Fish"}
    assert all(r[-1].startswith("https://imagedex.example.org/api/images/") for r in rows[1:])


def test_window_all_and_empty_query_cover_every_image(indexed: Services) -> None:
    data = gather(indexed, Report(name="all", formats=("csv",)), MONDAY_0800_PARIS)
    assert data.total == len(PHOTOS) and len(data.rows) == len(PHOTOS)
    assert data.date_from is None and data.charts.unsafe == 1
    empty = gather(indexed, Report(name="none", query="label:zebra"), MONDAY_0800_PARIS)
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(render_pdf(empty))).pages)
    assert "Matching images 0" in text and "No image matches" in text


def test_dashboard_source_adds_ingest_health(indexed: Services) -> None:
    report = Report(name="dash", source="dashboard", window="7d")
    data = gather(indexed, report, MONDAY_0800_PARIS)
    assert data.ingest is not None and data.total == 7
    text = pypdf.PdfReader(io.BytesIO(render_pdf(data))).pages[0].extract_text()
    assert "Queue 0 waiting, 0 in progress" in text


# -- definitions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"formats": ("pdf", "docx")}, "unknown format(s) docx"),
        ({"formats": ()}, "at least one format"),
        ({"schedule": "every tuesday"}, "every tuesday"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"window": "7 fortnights"}, "window '7 fortnights' is not understood"),
        ({"recipients": ("webhook:ftp://example.org/x",)}, "http"),
        ({"recipients": ("mailto:not-an-address",)}, "not-an-address"),
        ({"recipients": ("pigeon:home",)}, "unknown delivery target kind 'pigeon'"),
        ({"max_rows": 0}, "max_rows must be between 1 and 1000"),
        ({"source": "kibana"}, "unknown source 'kibana'"),
        ({"query": "confidence>=banana"}, "confidence>=banana"),
    ],
)
def test_bad_definitions_are_refused_with_a_clear_message(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    settings = _settings(tmp_path / "data")
    with pytest.raises(ConfigError) as caught:
        create_report(settings, Report(name="bad", **changes))
    assert message in str(caught.value)
    store = ReportStore.open(settings)
    assert store.reports() == []  # nothing half-saved


def test_names_are_slugs_and_unique(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "data")
    with pytest.raises(ConfigError, match="must be a slug"):
        create_report(settings, Report(name="Weekly Report!"))
    create_report(settings, Report(name="weekly"))
    with pytest.raises(ConfigError, match="already exists"):
        create_report(settings, Report(name="weekly"))
    with pytest.raises(ConfigError, match="no report named 'monthly'"):
        update_report(settings, "monthly", title="x")
    with pytest.raises(ConfigError, match="unknown format"):
        update_report(settings, "weekly", formats=("gif",))
    assert ReportStore.open(settings).get("weekly").formats == ("pdf",)  # unchanged


# -- runs and deliveries -----------------------------------------------------------------------


def _attachments(mail: Any) -> dict[str, bytes]:
    return {
        part.get_content_type(): part.get_payload(decode=True)
        for part in mail.message.iter_attachments()
    }


def test_run_delivers_by_mail_webhook_and_folder(tmp_path: Path, photo_dir: Path) -> None:
    with smtp_receiver(tmp_path) as smtp, http_receiver() as hook:
        settings = _settings(
            tmp_path / "data",
            smtp_host=smtp.host,
            smtp_port=smtp.port,
            smtp_security="none",
            webhook_secret="s3cret",
        )
        services = Services.from_settings(settings)
        index_photos(services, photo_dir)
        folder = tmp_path / "drop"
        report = create_report(
            settings,
            Report(
                name="animals",
                title="Animals",
                query="label:animal",
                formats=("pdf", "xlsx", "png", "csv"),
                window="7d",
                timezone="Europe/Paris",
                recipients=(
                    "mailto:alice@example.org,bob@example.org",
                    f"webhook:{hook.url}/hooks/reports",
                    f"folder:{folder}",
                ),
            ),
        )
        run = run_report(services, report, MONDAY_0800_PARIS)
        assert run.status == "ok" and run.total == 3 and len(run.deliveries) == 3
        outbox = Outbox.open(settings)
        assert outbox.deliver_due() == 3

        (mail,) = smtp.mails
        assert mail.message["Subject"] == "imagedex report: Animals (2026-03-02)"
        assert sorted(mail.recipients) == ["alice@example.org", "bob@example.org"]
        files = _attachments(mail)
        assert set(files) == {
            "application/pdf",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "image/png",
            "text/csv",
        }
        pdf = pypdf.PdfReader(io.BytesIO(files["application/pdf"]))
        assert "Matching images 3" in pdf.pages[0].extract_text()
        book = openpyxl.load_workbook(
            io.BytesIO(files["application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"])
        )
        assert book["Images"].max_row == 4
        assert Image.open(io.BytesIO(files["image/png"])).format == "PNG"
        plain = mail.message.get_body(("plain",))
        assert plain is not None and "Matching images: 3" in plain.get_content()

        (post,) = hook.requests
        assert post.path == "/hooks/reports"
        assert post.headers["x-imagedex-signature"].startswith("sha256=")
        body = json.loads(post.body)
        assert body["payload"]["report"] == "animals" and body["payload"]["total"] == 3
        assert body["payload"]["top_labels"][0] == {"label": "grass", "count": 2}
        assert body["link"].startswith("https://imagedex.example.org/api/reports/animals/preview")

        written = sorted(p.name for p in folder.iterdir())
        assert any(n.endswith("animals-20260302-0800.pdf") for n in written)  # Paris time
        assert any(n.endswith(".xlsx") for n in written)
        pdf_file = next(folder.glob("*.pdf"))
        assert len(pypdf.PdfReader(pdf_file).pages) >= 2

        (entry,) = ReportStore.open(settings).history("animals")
        assert entry.status == "ok" and entry.scheduled_for == "2026-03-02T07:00:00.000Z"
        assert sorted(d.status for d in outbox.history("report:animals")) == ["sent"] * 3
        services.close()


def test_a_dead_recipient_does_not_stop_the_others(tmp_path: Path, photo_dir: Path) -> None:
    dead_port = free_port()  # nothing listens here
    clock = Clock(MONDAY_0800_PARIS)
    with smtp_receiver(tmp_path) as smtp:
        settings = _settings(
            tmp_path / "data", smtp_host=smtp.host, smtp_port=smtp.port, smtp_security="none"
        )
        services = Services.from_settings(settings)
        index_photos(services, photo_dir)
        report = create_report(
            settings,
            Report(
                name="daily",
                formats=("csv",),
                recipients=(
                    f"webhook:http://127.0.0.1:{dead_port}/gone",
                    "mailto:ops@example.org",
                ),
            ),
            clock,
        )
        run = run_report(services, report, clock=clock)
        outbox = Outbox.open(settings, clock)
        assert outbox.deliver_due() == 1  # the mail; the webhook failed and waits for a retry
        assert len(smtp.mails) == 1 and smtp.mails[0].recipients == ["ops@example.org"]
        by_target = {d.target.split(":")[0]: d for d in outbox.history("report:daily")}
        assert by_target["mailto"].status == "sent"
        assert by_target["webhook"].status == "retrying"
        assert by_target["webhook"].last_error
        clock.now += timedelta(minutes=5)  # past the first retry delay: tried again, still dead
        outbox.deliver_due()
        assert outbox.get(by_target["webhook"].id).attempts == 2  # type: ignore[union-attr]
        assert len(smtp.mails) == 1  # the mail is not sent twice
        # the report's history shows each delivery's state
        from imagedex.reports.history import run_history

        (entry,) = run_history(settings, "daily")
        assert entry["id"] == run.id
        assert sorted(d["status"] for d in entry["delivery_status"]) == ["retrying", "sent"]
        services.close()


# -- schedules ---------------------------------------------------------------------------------


def test_weekly_report_fires_once_at_its_time_and_not_again_after_a_restart(
    tmp_path: Path, photo_dir: Path
) -> None:
    from imagedex.reports.jobs import make_handler
    from imagedex.scheduling.scheduler import Scheduler

    folder = tmp_path / "drop"
    clock = Clock(MONDAY_0800_PARIS - timedelta(days=2))  # Saturday
    settings = _settings(tmp_path / "data")
    services = Services.from_settings(settings)
    index_photos(services, photo_dir)
    create_report(
        settings,
        Report(
            name="weekly",
            formats=("csv",),
            schedule="weekly@mon 08:00",
            timezone="Europe/Paris",
            window="7d",
            recipients=(f"folder:{folder}",),
        ),
        clock,
    )

    def scheduler() -> Scheduler:  # a fresh process: new instance, same files
        instance = Scheduler.open(settings, clock)
        instance.register("report", make_handler(services, clock))
        return instance

    first = scheduler()
    (job,) = first.jobs("report")
    assert job.id == "report:weekly" and job.next_run == MONDAY_0800_PARIS.isoformat()
    clock.now = MONDAY_0800_PARIS - timedelta(seconds=1)
    assert first.run_pending() == []
    clock.now = MONDAY_0800_PARIS + timedelta(seconds=3)
    (ran,) = first.run_pending()
    assert ran.status == "ok" and ran.scheduled_for == MONDAY_0800_PARIS
    assert first.run_pending() == []
    # restart a few minutes later: the slot is done, nothing runs twice
    clock.now += timedelta(minutes=5)
    assert scheduler().run_pending() == []
    history = ReportStore.open(settings).history("weekly")
    assert len(history) == 1
    assert history[0].scheduled_for == "2026-03-02T07:00:00.000Z"
    assert history[0].total == 7  # the 7-day window ending at the scheduled instant
    # down for two weeks: the missed slots run once, not once each
    clock.now = MONDAY_0800_PARIS + timedelta(days=15)
    assert len(scheduler().run_pending()) == 1
    assert scheduler().run_pending() == []
    assert len(ReportStore.open(settings).history("weekly")) == 2

    # disabling pauses the job; deleting removes it
    update_report(settings, "weekly", clock, enabled=False)
    assert Scheduler.open(settings, clock).get("report:weekly").enabled is False  # type: ignore[union-attr]
    delete_report(settings, "weekly", clock)
    assert Scheduler.open(settings, clock).jobs("report") == []
    services.close()


# -- CLI and API -------------------------------------------------------------------------------


def test_cli_create_list_preview_run_history_delete(tmp_path: Path, photo_dir: Path) -> None:
    data_dir = tmp_path / "data"
    services = Services.from_settings(_settings(data_dir))
    index_photos(services, photo_dir)
    services.close()
    env = imagedex_env(data_dir, IMAGEDEX_AUTH="off", IMAGEDEX_DELIVERY_FOLDER_ROOT=str(tmp_path))
    folder = tmp_path / "drop"
    created = json.loads(
        run_cli(
            env,
            "report",
            "create",
            "pets",
            "--title",
            "Pets",
            "--query",
            "label:animal",
            "--format",
            "pdf",
            "--format",
            "xlsx",
            "--schedule",
            "weekly@mon 08:00",
            "--timezone",
            "Europe/Paris",
            "--to",
            f"folder:{folder}",
            "--to",
            "webhook:https://hooks.example.org/T0/SECRET-TOKEN",
            "--json",
        ).stdout
    )
    assert created["formats"] == ["pdf", "xlsx"] and created["next_run"]
    assert "SECRET-TOKEN" not in json.dumps(created)  # recipients are shown redacted
    listed = json.loads(run_cli(env, "report", "list", "--json").stdout)
    assert [r["name"] for r in listed["reports"]] == ["pets"]

    out_file = tmp_path / "pets.xlsx"
    run_cli(env, "report", "preview", "pets", "--format", "xlsx", "--out", str(out_file))
    assert openpyxl.load_workbook(out_file)["Images"].max_row == 4  # "all": 3 animals

    ran = run_cli(env, "report", "run", "pets")
    assert "3 matching images" in ran.stdout and ran.stdout.count("queued") == 2
    history = json.loads(run_cli(env, "report", "history", "pets", "--json").stdout)
    (entry,) = history["runs"]
    assert entry["status"] == "ok" and len(entry["delivery_status"]) == 2
    assert {d["status"] for d in entry["delivery_status"]} == {"queued"}

    bad = run_cli(
        env, "report", "create", "x", "--format", "pdf", "--schedule", "someday", check=False
    )
    assert bad.returncode != 0 and "someday" in bad.stderr
    updated = json.loads(run_cli(env, "report", "update", "pets", "--disable", "--json").stdout)
    assert updated["enabled"] is False and updated["formats"] == ["pdf", "xlsx"]
    run_cli(env, "report", "delete", "pets")
    assert json.loads(run_cli(env, "report", "list", "--json").stdout)["reports"] == []
    missing = run_cli(env, "report", "show", "pets", check=False)
    assert missing.returncode != 0 and "no report named 'pets'" in missing.stderr


def test_api_crud_preview_run_and_history(indexed: Services, tmp_path: Path) -> None:
    from imagedex.api.app import create_app

    client = TestClient(create_app(indexed), base_url="http://127.0.0.1")
    body = {"title": "Cats", "query": "label:cat", "formats": ["pdf", "png"], "window": "all"}
    created = client.post("/api/reports/cats", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["timezone"] == "UTC"
    assert client.post("/api/reports/cats", json=body).status_code == 409
    bad = client.post("/api/reports/dogs", json={**body, "formats": ["doc"]})
    assert bad.status_code == 400 and "unknown format(s) doc" in bad.json()["detail"]
    assert [r["name"] for r in client.get("/api/reports").json()["reports"]] == ["cats"]

    pdf = client.get("/api/reports/cats/preview")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert "Matching images 1" in pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    png = client.get("/api/reports/cats/preview", params={"format": "png"})
    assert png.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(png.content)).format == "PNG"
    assert client.get("/api/reports/cats/preview", params={"format": "doc"}).status_code == 422

    folder = tmp_path / "drop"
    replaced = client.put("/api/reports/cats", json={**body, "recipients": [f"folder:{folder}"]})
    assert replaced.status_code == 200 and replaced.json()["recipients"] == [f"folder:{folder}"]
    ran = client.post("/api/reports/cats/run")
    assert ran.status_code == 200 and ran.json()["total"] == 1
    assert [d["status"] for d in ran.json()["delivery_status"]] == ["queued"]
    runs = client.get("/api/reports/cats/history").json()["runs"]
    assert len(runs) == 1 and runs[0]["status"] == "ok"
    assert client.delete("/api/reports/cats").status_code == 200
    assert client.get("/api/reports/cats").status_code == 404
    assert client.get("/api/reports/cats/history").status_code == 404


# -- web app -----------------------------------------------------------------------------------


def test_reports_page_creates_runs_and_shows_history(indexed: Services, tmp_path: Path) -> None:
    import threading

    import uvicorn
    from playwright.sync_api import expect, sync_playwright

    from imagedex.api.app import create_app

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(indexed), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    folder = tmp_path / "drop"
    try:
        with sync_playwright() as driver:
            browser = driver.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"http://127.0.0.1:{port}/reports")
            expect(page.get_by_role("heading", name="Reports")).to_be_visible()
            expect(page.locator("#reports-list")).to_contain_text("No reports yet")
            page.fill("#report-name", "cats")
            page.fill("#report-title", "Cats weekly")
            page.fill("#report-query", "label:cat")
            page.check("input[value=xlsx]")
            page.fill("#report-schedule", "every blue moon")
            page.fill("#report-recipients", f"folder:{folder}")
            page.click("#report-form button[type=submit]")
            expect(page.locator("#reports-status")).to_contain_text("every blue moon")
            page.fill("#report-schedule", "weekly@mon 08:00")
            page.click("#report-form button[type=submit]")
            row = page.locator("tr[data-report=cats]")
            expect(row).to_contain_text("Cats weekly")
            expect(row).to_contain_text("weekly@mon 08:00 (UTC)")
            expect(row.locator("a.preview")).to_have_text(["PDF", "XLSX"])
            href = row.locator("a.preview").first.get_attribute("href")
            pdf = page.request.get(f"http://127.0.0.1:{port}{href}")
            assert pdf.headers["content-type"] == "application/pdf"
            row.get_by_role("button", name="Run now").click()
            expect(page.locator("#reports-status")).to_contain_text(
                "cats: 1 matching images, 1 deliveries queued"
            )
            page.locator("tr[data-report=cats]").get_by_role("button", name="History").click()
            expect(page.locator("td.history")).to_contain_text("ok, 1 images")
            expect(page.locator("td.history")).to_contain_text(f"folder:{folder}: queued")
            browser.close()
            assert errors == []
    finally:
        server.should_exit = True
        thread.join(timeout=10)
