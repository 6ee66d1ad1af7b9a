"""Report definitions and their run history in data_dir/reports.sqlite3."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from imagedex.config import Settings
from imagedex.db import Database, newest_rows
from imagedex.errors import ConfigError
from imagedex.reports.model import Report, ReportRun, iso_utc, validate

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    name TEXT PRIMARY KEY,
    definition TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    report TEXT NOT NULL,
    scheduled_for TEXT NOT NULL,
    started TEXT NOT NULL,
    finished TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    rows INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL DEFAULT 0,
    deliveries TEXT NOT NULL DEFAULT '[]',
    error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS runs_report ON runs (report, id);
"""

Clock = Callable[[], datetime]


class ReportNotFoundError(ConfigError):
    """No report has that name."""


class ReportStore:
    def __init__(self, path: Path, clock: Clock | None = None) -> None:
        self.path = path
        self._clock = clock or (lambda: datetime.now(UTC))
        self._database = Database(path, [_SCHEMA], synchronous="FULL")

    @classmethod
    def open(cls, settings: Settings, clock: Clock | None = None) -> ReportStore:
        return cls(settings.data_dir / "reports.sqlite3", clock)

    def _db(self) -> sqlite3.Connection:
        return self._database.connection()

    def close(self) -> None:
        self._database.close()

    # -- definitions ----------------------------------------------------------------------

    def create(self, report: Report) -> Report:
        report = validate(report)
        now = iso_utc(self._clock())
        report = report.updated(created_at=now, updated_at=now)
        with self._database.transaction() as db:
            try:
                db.execute(
                    "INSERT INTO reports (name, definition) VALUES (?, ?)",
                    (report.name, json.dumps(report.to_dict())),
                )
            except sqlite3.IntegrityError:
                raise ConfigError(
                    f"a report named {report.name!r} already exists (update it, or delete it first)"
                ) from None
        return report

    def update(self, name: str, **changes: Any) -> Report:
        current = self.get(name)
        if "name" in changes and changes["name"] not in (None, name):
            raise ConfigError("a report cannot be renamed; create a new one and delete this one")
        changes.pop("name", None)
        changes["updated_at"] = iso_utc(self._clock())
        try:
            report = validate(current.updated(**changes))
        except TypeError as exc:
            raise ConfigError(f"invalid report change: {exc}") from exc
        with self._database.transaction() as db:
            db.execute(
                "UPDATE reports SET definition = ? WHERE name = ?",
                (json.dumps(report.to_dict()), name),
            )
        return report

    def get(self, name: str) -> Report:
        row = (
            self._db().execute("SELECT definition FROM reports WHERE name = ?", (name,)).fetchone()
        )
        if row is None:
            raise ReportNotFoundError(f"no report named {name!r} (see `imagedex report list`)")
        return Report.from_dict(json.loads(row[0]))

    def reports(self) -> list[Report]:
        rows = self._db().execute("SELECT definition FROM reports ORDER BY name").fetchall()
        return [Report.from_dict(json.loads(r[0])) for r in rows]

    def delete(self, name: str) -> None:
        with self._database.transaction() as db:
            cursor = db.execute("DELETE FROM reports WHERE name = ?", (name,))
        if cursor.rowcount == 0:
            raise ReportNotFoundError(f"no report named {name!r}")

    # -- run history ----------------------------------------------------------------------

    def start_run(self, name: str, scheduled_for: datetime) -> ReportRun:
        started = iso_utc(self._clock())
        with self._database.transaction() as db:
            cursor = db.execute(
                "INSERT INTO runs (report, scheduled_for, started, status) VALUES (?, ?, ?, ?)",
                (name, iso_utc(scheduled_for), started, "running"),
            )
        return ReportRun(
            id=int(cursor.lastrowid or 0),
            report=name,
            scheduled_for=iso_utc(scheduled_for),
            started=started,
        )

    def finish_run(self, run: ReportRun) -> ReportRun:
        run.finished = iso_utc(self._clock())
        with self._database.transaction() as db:
            db.execute(
                "UPDATE runs SET finished = ?, status = ?, rows = ?, total = ?, deliveries = ?,"
                " error = ? WHERE id = ?",
                (
                    run.finished,
                    run.status,
                    run.rows,
                    run.total,
                    json.dumps(run.deliveries),
                    run.error,
                    run.id,
                ),
            )
        return run

    def history(self, name: str | None = None, limit: int = 50) -> list[ReportRun]:
        rows = newest_rows(
            self._db(),
            "runs",
            _RUN_COLUMNS,
            where=None if name is None else ("report", name),
            limit=limit,
            json_columns=("deliveries",),
        )
        return [ReportRun(**row) for row in rows]


_RUN_COLUMNS = [f.name for f in fields(ReportRun)]
