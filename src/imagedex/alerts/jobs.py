"""The scheduler's handler for "alert" jobs (one job per count/silence rule: `alert:<name>`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from imagedex.alerts.aggregate import Evaluation, evaluate_aggregate
from imagedex.alerts.manage import JOB_KIND
from imagedex.alerts.store import AlertStore
from imagedex.config import Settings
from imagedex.errors import ConfigError
from imagedex.index.base import SearchIndex

if TYPE_CHECKING:
    from imagedex.services import Services

log = logging.getLogger("imagedex.alerts")


class AlertJobs:
    """`handler(job_id, scheduled_for)` for the scheduler; `run(job_id)` returns the result."""

    def __init__(
        self,
        settings: Settings,
        index: Callable[[], SearchIndex],
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        from imagedex.notify import Outbox

        self.settings = settings
        self.index = index  # opened when a rule first runs, not when the scheduler starts
        self.clock = clock or (lambda: datetime.now(UTC))
        self.store = AlertStore.open(settings.data_dir)
        self.outbox = Outbox.open(settings, clock=clock)

    def __call__(self, job_id: str, scheduled_for: datetime) -> None:
        self.run(job_id)

    def run(self, job_id: str) -> Evaluation | None:
        """Evaluate the rule now, not at the scheduled slot: after a downtime the window must
        end at the present, or the alert would report on the past."""
        kind, _, name = job_id.partition(":")
        if kind != JOB_KIND or not name:
            raise ConfigError(f"{job_id!r} is not an alert job id (alert:<rule name>)")
        try:
            rule = self.store.get(name)
        except ConfigError:
            log.warning("alert job %s has no rule any more; skipping", job_id)
            return None
        if rule.per_image or not rule.enabled:
            return None
        result = evaluate_aggregate(
            self.index(), self.settings, self.store, self.outbox, rule, self.clock()
        )
        log.info("alert %s: value %g, firing %s", name, result.value, result.firing)
        return result


def make_handler(services: Services, clock: Callable[[], datetime] | None = None) -> AlertJobs:
    return AlertJobs(services.settings, lambda: services.index, clock)
