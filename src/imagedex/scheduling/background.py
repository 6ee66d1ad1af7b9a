"""Background loops `imagedex up` runs beside the API and the worker (scheduler, deliveries)."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from imagedex.services import Services

if TYPE_CHECKING:
    from imagedex.notify import Outbox
    from imagedex.scheduling.scheduler import Scheduler

log = logging.getLogger(__name__)

INTERVAL = 2.0  # seconds between rounds: the latency of a due job or a queued delivery
DELIVERY_BUDGET = 20.0  # seconds of sending per round, so timing-out receivers cannot stall jobs


def start_background(services: Services, stop: threading.Event) -> list[threading.Thread]:
    """Start the loop that runs due jobs (when `settings.scheduler`) and sends due deliveries;
    it ends when `stop` is set. An error in one round is logged and the next round goes on."""
    thread = threading.Thread(
        target=run_loop, args=(services, stop), name="imagedex-background", daemon=True
    )
    thread.start()
    return [thread]


def run_loop(services: Services, stop: threading.Event, interval: float = INTERVAL) -> None:
    from imagedex.notify import Outbox
    from imagedex.scheduling.scheduler import JOB_KINDS, Scheduler

    settings = services.settings
    outbox = Outbox.open(settings)
    scheduler = Scheduler.open(settings) if settings.scheduler else None
    if scheduler is not None:
        try:
            kinds = JOB_KINDS.names()
        except Exception:
            log.exception("cannot load the scheduled job handlers; scheduled jobs will not run")
            kinds = []
        for kind in kinds:
            try:
                scheduler.register(kind, JOB_KINDS.resolve(kind)(services))
            except Exception:
                log.exception("cannot set up the handler for %s jobs", kind)
    try:
        while not stop.is_set():
            run_round(outbox, scheduler)
            stop.wait(interval)
    finally:
        outbox.close()
        if scheduler is not None:
            scheduler.close()


def run_round(outbox: Outbox, scheduler: Scheduler | None) -> None:
    """One pass: due jobs first (they may enqueue deliveries), then due deliveries."""
    if scheduler is not None:
        try:
            scheduler.run_pending()
        except Exception:
            log.exception("scheduler round failed; trying again shortly")
    try:
        outbox.deliver_due(budget_s=DELIVERY_BUDGET)
    except Exception:
        log.exception("delivery round failed; trying again shortly")
