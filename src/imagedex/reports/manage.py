"""Create, change and delete reports: the definition store and the scheduler kept in step
(the CLI and the API both come through here)."""

from __future__ import annotations

from typing import Any

from imagedex.config import Settings
from imagedex.notify import check_allowed
from imagedex.reports.jobs import Clock, sync_schedule, unschedule
from imagedex.reports.model import Report
from imagedex.reports.store import ReportStore


def create_report(settings: Settings, report: Report, clock: Clock | None = None) -> Report:
    check_allowed(report.recipients, settings)
    store = ReportStore.open(settings, clock)
    try:
        saved = store.create(report)
    finally:
        store.close()
    sync_schedule(settings, saved, clock)
    return saved


def update_report(
    settings: Settings, name: str, clock: Clock | None = None, **changes: Any
) -> Report:
    recipients = changes.get("recipients")
    if recipients is not None:  # targets saved before are checked again when sent
        check_allowed((recipients,) if isinstance(recipients, str) else recipients, settings)
    store = ReportStore.open(settings, clock)
    try:
        saved = store.update(name, **changes)
    finally:
        store.close()
    sync_schedule(settings, saved, clock)
    return saved


def delete_report(settings: Settings, name: str, clock: Clock | None = None) -> None:
    store = ReportStore.open(settings, clock)
    try:
        store.delete(name)
    finally:
        store.close()
    unschedule(settings, name, clock)


def get_report(settings: Settings, name: str) -> Report:
    store = ReportStore.open(settings)
    try:
        return store.get(name)
    finally:
        store.close()


def list_reports(settings: Settings) -> list[Report]:
    store = ReportStore.open(settings)
    try:
        return store.reports()
    finally:
        store.close()
