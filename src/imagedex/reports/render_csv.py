"""The CSV report: one row per matching image (the XLSX "Images" sheet's columns)."""

from __future__ import annotations

import csv
import io

from imagedex.reports.data import ReportData
from imagedex.reports.rows import image_columns, image_rows


def _safe(value: object) -> object:
    # a cell starting with = + - @ is a formula to spreadsheet apps; titles come from uploaders
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return "" if value is None else value


def render_csv(data: ReportData) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(image_columns(data))
    for row in image_rows(data):
        writer.writerow([_safe(v) for v in row])
    return buf.getvalue().encode("utf-8-sig")  # the BOM makes Excel read UTF-8 titles right
