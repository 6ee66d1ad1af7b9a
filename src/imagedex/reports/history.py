"""A report's runs joined with the outbox's state of each delivery they queued."""

from __future__ import annotations

from typing import Any

from imagedex.config import Settings
from imagedex.notify import Outbox
from imagedex.reports.store import ReportStore


def _status(outbox: Outbox, ids: list[str], with_errors: bool = True) -> list[dict[str, Any]]:
    found = (outbox.get(delivery_id) for delivery_id in ids)
    return [d.summary(with_errors) for d in found if d is not None]


def delivery_status(settings: Settings, ids: list[str]) -> list[dict[str, Any]]:
    """Where each delivery stands in the outbox (target redacted: no webhook tokens)."""
    outbox = Outbox.open(settings)
    try:
        return _status(outbox, ids)
    finally:
        outbox.close()


def run_history(
    settings: Settings, name: str, limit: int = 20, with_errors: bool = True
) -> list[dict[str, Any]]:
    """Newest run first, each with `delivery_status` (sent, retrying, failed, ...)."""
    store = ReportStore.open(settings)
    outbox = Outbox.open(settings)
    try:
        store.get(name)  # a clear error for a name that does not exist
        runs = []
        for run in store.history(name, limit):
            data = run.to_dict()
            data["delivery_status"] = _status(outbox, run.deliveries, with_errors)
            runs.append(data)
        return runs
    finally:
        store.close()
        outbox.close()
