"""The table of matching images as plain cells, shared by the XLSX and CSV renderers.

`ingested_at` is a date-time in the report's time zone (the renderers write it as their format
allows); a stored value that is no date stays as it was written.
"""

from __future__ import annotations

from datetime import datetime

from imagedex.reports import times
from imagedex.reports.data import ReportData

MAX_LABEL_COLUMNS = 10
Cell = str | float | datetime | None


def image_columns(data: ReportData) -> list[str]:
    labels = min(data.label_columns, MAX_LABEL_COLUMNS)
    pairs = [name for n in range(1, labels + 1) for name in (f"label {n}", f"confidence {n}")]
    return ["id", "title", "key", "ingested_at", *pairs, "description", "link"]


def image_rows(data: ReportData) -> list[list[Cell]]:
    labels = min(data.label_columns, MAX_LABEL_COLUMNS)
    table: list[list[Cell]] = []
    for row in data.rows:
        ingested = times.local_or_none(row.ingested_at, data.timezone)
        cells: list[Cell] = [row.id, row.title, row.key, ingested or row.ingested_at]
        for n in range(labels):
            if n < len(row.labels):
                cells.extend(row.labels[n])
            else:
                cells.extend((None, None))
        cells.extend((row.description, row.link))
        table.append(cells)
    return table
