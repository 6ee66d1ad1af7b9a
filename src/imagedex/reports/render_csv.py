"""The CSV report: one row per matching image (the XLSX "Images" sheet's columns)."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from imagedex.reports.csv_cells import spreadsheet_safe
from imagedex.reports.data import ReportData
from imagedex.reports.rows import image_columns, image_rows


def render_csv(data: ReportData) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(image_columns(data))
    for row in image_rows(data):
        writer.writerow([spreadsheet_safe(_text(v)) for v in row])
    return buf.getvalue().encode("utf-8-sig")  # the BOM makes Excel read UTF-8 titles right


def _text(value: object) -> object:
    """Date-times as `2026-03-02 08:00:00+01:00`: the report's local time, and its offset so a
    script reads the same instant."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return value
