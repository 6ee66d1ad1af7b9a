"""Hand an alert to the outbox (one delivery per action) and record it in the history."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from imagedex.alerts.model import AlertRecord, Rule
from imagedex.alerts.store import AlertStore, iso

log = logging.getLogger("imagedex.alerts")


def source_of(rule_name: str) -> str:
    """The outbox `source` of a rule's deliveries (its history filter)."""
    return f"alert:{rule_name}"


def send_alert(
    outbox: Any,
    store: AlertStore,
    rule: Rule,
    fields: dict[str, Any],
    now: datetime,
    doc_ids: list[str] | None = None,
    value: float | None = None,
    threshold: float | None = None,
    suppressed: int = 0,
    status: str = "queued",
) -> AlertRecord:
    """Enqueue one message per action (the outbox sends later, so this never blocks) and
    record the alert. An action the outbox refuses is logged and the others still go out."""
    from imagedex.notify import Message

    message = Message(**fields)
    delivery_ids: list[str] = []
    for target in rule.actions:
        try:
            delivery_ids.append(outbox.enqueue(target, message, source_of(rule.name)))
        except Exception as exc:
            log.warning("alert %s: could not queue a delivery: %s", rule.name, exc)
    return store.record(
        AlertRecord(
            id=0,
            rule=rule.name,
            kind=rule.kind,
            fired_at=iso(now),
            subject=str(fields["subject"]),
            doc_ids=list(doc_ids or []),
            value=value,
            threshold=threshold,
            suppressed=suppressed,
            delivery_ids=delivery_ids,
            status=status if delivery_ids else "failed",
        )
    )
