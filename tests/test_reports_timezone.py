"""A report set to a time zone speaks it: the window, the generation time, the table's times and
the file names are local and to the minute; page 1 of the PDF carries the charts; the label
chart shows each label's share of the images (they overlap), not slices of a pie."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import openpyxl
import pypdf
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle, Wedge

from imagedex.reports.data import Charts, gather
from imagedex.reports.manage import create_report
from imagedex.reports.model import Report
from imagedex.reports.render_charts import draw_label_share
from imagedex.reports.render_csv import render_csv
from imagedex.reports.render_pdf import render_pdf
from imagedex.reports.render_xlsx import render_xlsx
from imagedex.reports.run import build_message, run_report
from imagedex.services import Services
from test_reports import MONDAY_0800_PARIS, _settings, index_photos

PARIS_WEEK = "Mon 23 Feb 2026 08:00 CET to Mon 2 Mar 2026 08:00 CET"


@pytest.fixture
def indexed(tmp_path: Path, photo_dir: Path) -> Iterator[Services]:
    services = Services.from_settings(_settings(tmp_path / "data"))
    index_photos(services, photo_dir)
    yield services
    services.close()


def _paris(**changes: object) -> Report:
    fields: dict[str, object] = {
        "name": "weekly",
        "title": "Week in Paris",
        "window": "7d",
        "timezone": "Europe/Paris",
        "formats": ("pdf", "xlsx", "csv"),
    }
    fields.update(changes)
    return Report(**fields)  # type: ignore[arg-type]


def test_the_pdf_says_its_window_and_times_in_the_reports_zone(indexed: Services) -> None:
    data = gather(indexed, _paris(), MONDAY_0800_PARIS, thumbnails=True)
    pdf = pypdf.PdfReader(io.BytesIO(render_pdf(data)))
    first = pdf.pages[0].extract_text()
    assert f"Window 7d: {PARIS_WEEK}" in first
    assert "Generated at Mon 2 Mar 2026 08:00 CET (Europe/Paris)" in first
    text = "\n".join(page.extract_text() for page in pdf.pages)
    assert ".000Z" not in text and "T07:00" not in text  # no raw UTC stamps left
    # Chelsea was ingested at 07:00 UTC on 1 March: 08:00 in Paris
    assert "Ingested (Europe/Paris)" in text and "2026-03-01 08:00" in text


def test_page_one_carries_the_charts_after_the_summary(indexed: Services) -> None:
    data = gather(indexed, _paris(), MONDAY_0800_PARIS, thumbnails=True)
    pdf = pypdf.PdfReader(io.BytesIO(render_pdf(data)))
    first = pdf.pages[0]
    assert "Matching images" in first.extract_text()
    # images over time, top labels and the label shares fit under the summary
    assert len(first.images) >= 3, "page 1 holds the summary only"


def test_file_names_subject_and_summary_are_local(indexed: Services) -> None:
    report = _paris()
    message = build_message(indexed, report, gather(indexed, report, MONDAY_0800_PARIS))
    assert message.subject == "imagedex report: Week in Paris (2026-03-02)"
    assert [a.filename for a in message.attachments] == [
        "weekly-20260302-0800.pdf",
        "weekly-20260302-0800.xlsx",
        "weekly-20260302-0800.csv",
    ]
    assert f"Period: {PARIS_WEEK}" in message.text
    assert message.payload["timezone"] == "Europe/Paris"
    assert message.payload["date_to"] == "2026-03-02T07:00:00.000Z"  # scripts still get UTC

    summer = datetime(2026, 7, 6, 6, 0, tzinfo=UTC)  # Monday 08:00 in Paris, summer time
    local = build_message(indexed, report, gather(indexed, report, summer))
    assert local.attachments[0].filename == "weekly-20260706-0800.pdf"
    assert "Mon 29 Jun 2026 08:00 CEST to Mon 6 Jul 2026 08:00 CEST" in local.text


def test_a_scheduled_run_names_its_folder_files_in_local_time(
    indexed: Services, tmp_path: Path
) -> None:
    folder = tmp_path / "drop"
    report = create_report(
        indexed.settings, _paris(formats=("csv",), recipients=(f"folder:{folder}",))
    )
    run = run_report(indexed, report, MONDAY_0800_PARIS)
    assert run.status == "ok"
    from imagedex.notify import Outbox

    assert Outbox.open(indexed.settings).deliver_due() == 1
    assert next(p.name for p in folder.glob("*.csv")).endswith("weekly-20260302-0800.csv")


def test_spreadsheets_hold_local_times(indexed: Services) -> None:
    data = gather(indexed, _paris(), MONDAY_0800_PARIS)
    book = openpyxl.load_workbook(io.BytesIO(render_xlsx(data)))
    rows = {r[1]: r for r in book["Images"].iter_rows(min_row=2, values_only=True)}
    assert rows["Chelsea"][3] == datetime(2026, 3, 1, 8, 0)
    summary = dict(book["Summary"].iter_rows(values_only=True))
    assert summary["period"] == PARIS_WEEK
    assert summary["time zone"].startswith("Europe/Paris")

    table = list(csv.reader(io.StringIO(render_csv(data).decode("utf-8-sig"))))
    chelsea = next(r for r in table if r[1] == "Chelsea")
    assert chelsea[3] == "2026-03-01 08:00:00+01:00"


def test_label_shares_are_parts_of_the_images_not_of_a_pie() -> None:
    # 75 images, 40 show a dog and 30 a person (some both): 53 % and 40 %, which a pie of the
    # two counts would call 57 % and 43 %
    charts = Charts(labels=[("dog", 40), ("person", 30)], total=75)
    figure = Figure()
    ax = figure.add_subplot()
    draw_label_share(ax, charts)
    assert not [p for p in ax.patches if isinstance(p, Wedge)]
    widths = {
        t.get_text(): round(p.get_width(), 1)
        for t, p in zip(
            reversed(ax.get_yticklabels()),
            [p for p in ax.patches if isinstance(p, Rectangle)][::-1],
            strict=True,
        )
    }
    assert widths == {"dog": 53.3, "person": 40.0}
    assert [t.get_text() for t in ax.texts] == ["40%", "53%"]
