"""The scheduler's handler for "alert" jobs (one job per count/silence rule: `alert:<name>`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from imagedex.alerts.aggregate import Evaluation, evaluate_aggregate
from imagedex.alerts.manage import JOB_KIND
from imagedex.alerts.store import AlertStore
from imagedex.errors import ConfigError
from imagedex.services import Services

log = logging.getLogger("imagedex.alerts")

Handler = Callable[[str, datetime], None]


def make_handler(
    services: Services, clock: Callable[[], datetime] | None = None
) -> Callable[[str, datetime], Evaluation | None]:
    """`handler(job_id, scheduled_for)` evaluates the rule now (not at the scheduled slot: after
    a downtime the window must end at the present, or it would report on the past)."""
    from imagedex.notify import Outbox

    now = clock or (lambda: datetime.now(UTC))
    store = AlertStore.open(services.settings.data_dir)
    outbox = Outbox.open(services.settings, clock=clock)

    def handler(job_id: str, scheduled_for: datetime) -> Evaluation | None:
        kind, _, name = job_id.partition(":")
        if kind != JOB_KIND or not name:
            raise ConfigError(f"{job_id!r} is not an alert job id (alert:<rule name>)")
        try:
            rule = store.get(name)
        except ConfigError:
            log.warning("alert job %s has no rule any more; skipping", job_id)
            return None
        if rule.per_image or not rule.enabled:
            return None
        result = evaluate_aggregate(services, store, outbox, rule, now())
        log.info("alert %s: value %g, firing %s", name, result.value, result.firing)
        return result

    return handler
