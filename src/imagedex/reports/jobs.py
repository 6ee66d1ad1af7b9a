"""Reports on the scheduler: the handler `imagedex up` registers for kind "report", and the
sync of each report's schedule into the scheduler's jobs (job id `report:<name>`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from imagedex.config import Settings
from imagedex.reports.model import Report
from imagedex.reports.store import ReportNotFoundError, ReportStore
from imagedex.services import Services

log = logging.getLogger(__name__)

KIND = "report"
PREFIX = "report:"
Clock = Callable[[], datetime]


def job_id(name: str) -> str:
    return PREFIX + name


def make_handler(services: Services, clock: Clock | None = None) -> Callable[[str, datetime], None]:
    """What the scheduler calls for a due report job: one run for the slot `scheduled_for`."""

    def handle(job: str, scheduled_for: datetime) -> None:
        from imagedex.reports.run import run_report

        name = job.removeprefix(PREFIX)
        store = ReportStore.open(services.settings, clock)
        try:
            report = store.get(name)
        except ReportNotFoundError:
            log.warning("job %s has no report any more; removing the job", job)
            unschedule(services.settings, name, clock)
            return
        finally:
            store.close()
        if not report.enabled:
            return
        run = run_report(services, report, scheduled_for, clock)
        if run.status == "partial":
            log.warning("report %s: some recipients were not queued: %s", name, run.error)

    return handle


def sync_schedule(settings: Settings, report: Report, clock: Clock | None = None) -> None:
    """Make the scheduler's job match the report: scheduled, re-timed, paused, or gone."""
    from imagedex.scheduling.scheduler import Scheduler

    scheduler = Scheduler.open(settings, clock)
    try:
        if report.schedule:
            scheduler.set_job(
                job_id(report.name), KIND, report.schedule, report.timezone, report.enabled
            )
        else:
            scheduler.remove_job(job_id(report.name))
    finally:
        scheduler.close()


def unschedule(settings: Settings, name: str, clock: Clock | None = None) -> None:
    from imagedex.scheduling.scheduler import Scheduler

    scheduler = Scheduler.open(settings, clock)
    try:
        scheduler.remove_job(job_id(name))
    finally:
        scheduler.close()


def next_run(settings: Settings, name: str) -> str | None:
    """When the scheduler will next run the report (None: on demand only, or disabled)."""
    from imagedex.scheduling.scheduler import Scheduler

    scheduler = Scheduler.open(settings)
    try:
        job = scheduler.get(job_id(name))
        return job.next_run if job else None
    finally:
        scheduler.close()
