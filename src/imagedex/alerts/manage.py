"""What the CLI and the API do with rules: save (and schedule), delete, mute, test, history."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from imagedex.alerts.deliver import send_alert
from imagedex.alerts.messages import SUBJECT_PREFIX, base_url
from imagedex.alerts.model import AlertRecord, Rule, parse_duration
from imagedex.alerts.store import AlertStore, iso
from imagedex.config import Settings
from imagedex.notify import check_allowed

JOB_KIND = "alert"


def job_id(rule_name: str) -> str:
    return f"{JOB_KIND}:{rule_name}"


def open_store(settings: Settings) -> AlertStore:
    return AlertStore.open(settings.data_dir)


def save_rule(
    settings: Settings, rule: Rule, now: datetime, replace_existing: bool = False
) -> Rule:
    """Validate and store a rule; aggregate rules get (or lose) their scheduler job."""
    stamp = iso(now)
    store = open_store(settings)
    created = stamp
    if replace_existing:
        created = store.get(rule.name).created_at or stamp
    clean = replace(rule.validated(), created_at=created, updated_at=stamp)
    check_allowed(clean.actions, settings)
    store.put(clean, replace=replace_existing)
    _sync_job(settings, clean, now)
    return clean


def delete_rule(settings: Settings, name: str) -> None:
    open_store(settings).delete(name)
    scheduler = _scheduler(settings)
    try:
        scheduler.remove_job(job_id(name))
    finally:
        scheduler.close()


def mute_rule(settings: Settings, name: str, now: datetime, period: str | None = None) -> Rule:
    """Mute until now + period (e.g. `2h`), or until unmuted when no period is given."""
    until = "forever" if not period else iso(now + timedelta(seconds=parse_duration(period)))
    store = open_store(settings)
    rule = replace(store.get(name), muted_until=until, updated_at=iso(now))
    return store.put(rule, replace=True, keep_state=True)


def unmute_rule(settings: Settings, name: str, now: datetime) -> Rule:
    store = open_store(settings)
    rule = replace(store.get(name), muted_until=None, updated_at=iso(now))
    return store.put(rule, replace=True, keep_state=True)


def _sync_job(settings: Settings, rule: Rule, now: datetime) -> None:
    scheduler = _scheduler(settings, now)
    try:
        if rule.per_image:
            scheduler.remove_job(job_id(rule.name))
        else:
            scheduler.set_job(
                job_id(rule.name), JOB_KIND, rule.schedule, settings.timezone, rule.enabled
            )
    finally:
        scheduler.close()


def _scheduler(settings: Settings, now: datetime | None = None) -> Any:
    """The scheduler, computing next runs from `now` (the caller's clock)."""
    from imagedex.scheduling.scheduler import Scheduler

    return Scheduler.open(settings, clock=(lambda: now) if now is not None else None)


def send_test(settings: Settings, name: str, now: datetime) -> AlertRecord:
    """A test notification through the outbox to every action of the rule (not throttled)."""
    store = open_store(settings)
    rule = store.get(name)
    text = (
        f"This is a test of the imagedex alert rule {rule.name} ({rule.summary()}).\n"
        f"When it fires, notifications like this one go to: "
        f"{', '.join(rule.redacted_actions())}.\n"
    )
    fields = {
        "subject": f"{SUBJECT_PREFIX}test of rule {rule.name}",
        "text": text,
        "link": base_url(settings) + "/",
        "payload": {"rule": rule.name, "kind": rule.kind, "test": True},
    }
    outbox = _open_outbox(settings)
    try:
        return send_alert(outbox, store, rule, fields, now, status="test")
    finally:
        outbox.close()


def history(
    settings: Settings, rule: str | None = None, limit: int = 100, with_errors: bool = True
) -> list[dict[str, Any]]:
    """Alerts, newest first, each with the live status of its deliveries from the outbox."""
    records = open_store(settings).history(rule, limit)
    if not records:
        return []
    result = []
    outbox = _open_outbox(settings)
    try:
        for record in records:
            data = record.to_dict()
            found = (outbox.get(i) for i in record.delivery_ids)
            data["deliveries"] = [d.summary(with_errors) for d in found if d is not None]
            data["status"] = _overall_status(record, data["deliveries"])
            result.append(data)
    finally:
        outbox.close()
    return result


def _open_outbox(settings: Settings) -> Any:
    from imagedex.notify import Outbox

    return Outbox.open(settings)


def _overall_status(record: AlertRecord, deliveries: list[dict[str, Any]]) -> str:
    if not deliveries:
        return record.status
    states = {d["status"] for d in deliveries}
    for status in ("failed", "retrying", "queued"):
        if status in states:
            return status
    return "sent"
