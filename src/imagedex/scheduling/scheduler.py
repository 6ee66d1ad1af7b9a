"""Persistent jobs in data_dir/schedule.sqlite3, run by whichever imagedex process claims them.

How a feature plugs in (reports, alerts):

- Write `imagedex/<feature>/jobs.py` with `make_handler(services) -> handler`, where
  `handler(job_id: str, scheduled_for: datetime) -> None` does one run (render, evaluate, enqueue
  deliveries through `imagedex.notify.Outbox`), and name it in `JOB_KINDS` (kind "report" is
  `imagedex.reports.jobs:make_handler`, kind "alert" `imagedex.alerts.jobs:make_handler`; another
  package registers a kind through the `imagedex.jobs` entry-point group, or calls
  `JOB_KINDS.register` before start-up). `imagedex.scheduling.background.start_background`
  registers each kind's handler with its scheduler.
- Create, change and delete jobs with `Scheduler.open(settings).set_job(job_id, kind, spec,
  timezone, enabled)` / `remove_job(job_id)`, e.g. `set_job("report:weekly-cats", "report",
  "weekly@mon 08:00", "Europe/Paris")`. Re-saving a job with an unchanged schedule keeps its
  next run; a changed schedule (or re-enabling) computes the next run from now.

Guarantees:

- A due job is claimed with one conditional UPDATE (`next_run` unchanged and no live lease), so of
  several processes or Scheduler instances exactly one runs a slot; the others skip it.
- While a handler runs, its lease is renewed, so a slow run is never started twice concurrently.
- After a run (success or handler exception) `next_run` becomes the first slot after the finish
  time: a process that was down for five slots runs the job once, not five times.
- A process that dies between claim and finish stops renewing its lease; once the lease expires
  (LEASE_SECONDS after the last renewal) the next `run_pending` anywhere runs the same slot again.
  So a slot runs at least once across crashes and at most once otherwise; handlers whose runs have
  side effects (deliveries) should tolerate the rare repeat after a crash.
- A handler exception is recorded (last_status "error", last_error) and the job moves on; its
  deliveries retry on their own through the outbox.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagedex.clock import iso_from_seconds, utc_now
from imagedex.config import Settings
from imagedex.db import Database
from imagedex.errors import ConfigError
from imagedex.registry import Registry
from imagedex.scheduling.schedule import Schedule

if TYPE_CHECKING:
    from imagedex.services import Services

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Handler = Callable[[str, datetime], None]
# kind -> factory `make_handler(services) -> handler`; installed packages add kinds through the
# `imagedex.jobs` entry-point group
JOB_KINDS: Registry[Callable[[Services], Handler]] = Registry("scheduled job kind", "imagedex.jobs")
JOB_KINDS.register("report", "imagedex.reports.jobs:make_handler")
JOB_KINDS.register("alert", "imagedex.alerts.jobs:make_handler")
LEASE_SECONDS = 300.0
RENEW_EVERY = 60.0  # real seconds between lease renewals while a handler runs

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    spec TEXT NOT NULL,
    timezone TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    next_run INTEGER,
    last_run INTEGER,
    last_status TEXT,
    last_error TEXT,
    lease_owner TEXT,
    lease_until REAL
);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (enabled, next_run);
"""


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    spec: str
    timezone: str
    enabled: bool
    next_run: str | None
    last_run: str | None
    last_status: str | None  # ok | error | None (never ran)
    last_error: str | None
    running: bool  # a live lease: some process is running it now

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class JobRun:
    job_id: str
    kind: str
    scheduled_for: datetime
    status: str  # ok | error
    error: str | None
    next_run: datetime


class Scheduler:
    def __init__(self, path: Path, clock: Clock | None = None) -> None:
        self.path = Path(path)
        self._clock = clock or utc_now
        self._owner = uuid.uuid4().hex
        self._handlers: dict[str, Handler] = {}
        self._database = Database(self.path, [_SCHEMA])

    @classmethod
    def open(cls, settings: Settings, clock: Clock | None = None) -> Scheduler:
        return cls(settings.data_dir / "schedule.sqlite3", clock)

    def _db(self) -> sqlite3.Connection:
        return self._database.connection()

    def register(self, kind: str, handler: Handler) -> None:
        self._handlers[kind] = handler

    def set_job(
        self, job_id: str, kind: str, spec: str, timezone: str = "UTC", enabled: bool = True
    ) -> Job:
        """Create or update a job (ConfigError for a bad spec or zone)."""
        if not job_id.strip():
            raise ConfigError("a job needs an id")
        schedule = Schedule.parse(spec, timezone)
        with self._database.transaction() as db:
            row = db.execute(
                "SELECT spec, timezone, enabled, next_run FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
            unchanged = (
                row is not None
                and (row[0], row[1]) == (schedule.spec, timezone)
                and bool(row[2]) == enabled
                and row[3] is not None
            )
            next_run = row[3] if unchanged else self._next(schedule, self._clock())
            db.execute(
                "INSERT INTO jobs (id, kind, spec, timezone, enabled, next_run)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET kind = excluded.kind,"
                " spec = excluded.spec, timezone = excluded.timezone,"
                " enabled = excluded.enabled, next_run = excluded.next_run",
                (job_id, kind, schedule.spec, timezone, int(enabled), next_run),
            )
        job = self.get(job_id)
        assert job is not None
        return job

    def remove_job(self, job_id: str) -> bool:
        return self._db().execute("DELETE FROM jobs WHERE id = ?", (job_id,)).rowcount == 1

    def get(self, job_id: str) -> Job | None:
        row = self._db().execute(_SELECT + " WHERE id = ?", (job_id,)).fetchone()
        return self._job(row) if row else None

    def jobs(self, kind: str | None = None) -> list[Job]:
        if kind is None:
            rows = self._db().execute(_SELECT + " ORDER BY id")
        else:
            rows = self._db().execute(_SELECT + " WHERE kind = ? ORDER BY id", (kind,))
        return [self._job(row) for row in rows]

    def _job(self, row: tuple[Any, ...]) -> Job:
        id_, kind, spec, tz, enabled, next_run, last_run, status, error, lease_until = row
        now = self._clock().timestamp()
        return Job(
            id=id_,
            kind=kind,
            spec=spec,
            timezone=tz,
            enabled=bool(enabled),
            next_run=iso_from_seconds(next_run) if enabled else None,
            last_run=iso_from_seconds(last_run),
            last_status=status,
            last_error=error,
            running=lease_until is not None and lease_until >= now,
        )

    @staticmethod
    def _next(schedule: Schedule, after: datetime) -> int:
        return int(schedule.next_after(after).timestamp())

    def run_pending(self) -> list[JobRun]:
        """Run every due job this instance wins, one after another; return what ran."""
        now = self._clock().timestamp()
        due = (
            self._db()
            .execute(
                "SELECT id, kind, spec, timezone, next_run FROM jobs WHERE enabled = 1"
                " AND next_run <= ? AND (lease_until IS NULL OR lease_until < ?) ORDER BY next_run",
                (now, now),
            )
            .fetchall()
        )
        runs = []
        for job_id, kind, spec, tz, next_run in due:
            handler = self._handlers.get(kind)
            if handler is None:  # another process may have it; leave the job to that one
                log.debug("no handler for job %s of kind %s", job_id, kind)
                continue
            if self._claim(job_id, next_run):
                runs.append(self._run(job_id, kind, Schedule.parse(spec, tz), next_run, handler))
        return runs

    def _claim(self, job_id: str, next_run: int) -> bool:
        now = self._clock().timestamp()
        cursor = self._db().execute(
            "UPDATE jobs SET lease_owner = ?, lease_until = ? WHERE id = ? AND enabled = 1"
            " AND next_run = ? AND (lease_until IS NULL OR lease_until < ?)",
            (self._owner, now + LEASE_SECONDS, job_id, next_run, now),
        )
        return cursor.rowcount == 1

    def _run(
        self, job_id: str, kind: str, schedule: Schedule, next_run: int, handler: Handler
    ) -> JobRun:
        scheduled_for = datetime.fromtimestamp(next_run, UTC)
        started = self._clock()
        renewing = _LeaseRenewal(self, job_id)
        renewing.start()
        try:
            handler(job_id, scheduled_for)
            status, error = "ok", None
        except Exception as exc:
            log.exception("job %s (%s) failed", job_id, kind)
            status, error = "error", f"{type(exc).__name__}: {exc}"[:2000]
        finally:
            renewing.stop()
        # the job may have been re-timed while it ran: the next slot follows its current spec
        current = (
            self._db().execute("SELECT spec, timezone FROM jobs WHERE id = ?", (job_id,)).fetchone()
        )
        if current is not None and (current[0], current[1]) != (schedule.spec, schedule.timezone):
            schedule = Schedule.parse(current[0], current[1])
        following = self._next(schedule, self._clock())
        self._db().execute(
            "UPDATE jobs SET last_run = ?, last_status = ?, last_error = ?, next_run = ?,"
            " lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?",
            (int(started.timestamp()), status, error, following, job_id, self._owner),
        )
        log.info("job %s ran for %s: %s", job_id, scheduled_for.isoformat(), status)
        return JobRun(
            job_id, kind, scheduled_for, status, error, datetime.fromtimestamp(following, UTC)
        )

    def renew(self, job_id: str) -> None:
        self._db().execute(
            "UPDATE jobs SET lease_until = ? WHERE id = ? AND lease_owner = ?",
            (self._clock().timestamp() + LEASE_SECONDS, job_id, self._owner),
        )

    def release_thread(self) -> None:
        """Close the calling thread's connection only."""
        self._database.release()

    def close(self) -> None:
        self._database.close()


class _LeaseRenewal:
    """Keeps a running job's lease alive from a side thread until the handler returns."""

    def __init__(self, scheduler: Scheduler, job_id: str) -> None:
        self._scheduler = scheduler
        self._job_id = job_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="imagedex-lease", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        try:
            while not self._stop.wait(RENEW_EVERY):
                try:
                    self._scheduler.renew(self._job_id)
                except sqlite3.Error:
                    log.exception("cannot renew the lease of job %s", self._job_id)
        finally:
            self._scheduler.release_thread()


_SELECT = (
    "SELECT id, kind, spec, timezone, enabled, next_run, last_run, last_status, last_error,"
    " lease_until FROM jobs"
)
