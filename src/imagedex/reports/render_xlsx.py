"""The XLSX report (openpyxl): sheet "Images" (one row per matching image), sheet "Labels"."""

from __future__ import annotations

import io
from datetime import datetime

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from imagedex.reports.data import ReportData
from imagedex.reports.rows import image_columns, image_rows

_WIDTHS = {"id": 34, "title": 32, "key": 36, "ingested_at": 24, "description": 48, "link": 60}


def _header(sheet: Worksheet, names: list[str]) -> None:
    sheet.append(names)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "A2"
    for position, name in enumerate(names, start=1):
        width = _WIDTHS.get(name, 14 if name.startswith("confidence") else 22)
        sheet.column_dimensions[get_column_letter(position)].width = width


def render_xlsx(data: ReportData) -> bytes:
    book = Workbook()
    images = book.active
    assert images is not None  # a new workbook always has one sheet
    images.title = "Images"
    _header(images, image_columns(data))
    for row in image_rows(data):
        # Excel has no time zones: date-times are the report's local time, as Summary says
        images.append([v.replace(tzinfo=None) if isinstance(v, datetime) else v for v in row])
        for cell in images[images.max_row]:
            # strings are stored as text, never as formulas, whatever a title starts with
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"
            elif isinstance(cell.value, datetime):
                cell.number_format = "yyyy-mm-dd hh:mm:ss"
    labels = book.create_sheet("Labels")
    _header(labels, ["label", "count"])
    labels.column_dimensions["A"].width = 32
    for label, count in data.charts.labels:
        labels.append([label, count])
    summary = book.create_sheet("Summary")
    for name, value in (
        ("report", data.title),
        ("query", data.query or "(every image)"),
        ("window", data.window),
        ("period", data.period),
        ("time zone", f"{data.timezone} (every time in this workbook)"),
        ("generated_at", data.generated),
        ("matching images", data.total),
        ("listed", len(data.rows)),
    ):
        summary.append([name, value])
    summary.column_dimensions["A"].width = 18
    summary.column_dimensions["B"].width = 60
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()
