"""What the CLI and the API do with rules: save (and schedule), delete, mute, test, history."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from imagedex.alerts.deliver import send_alert, source_of
from imagedex.alerts.messages import SUBJECT_PREFIX, base_url
from imagedex.alerts.model import AlertRecord, Rule, parse_duration
from imagedex.alerts.store import AlertStore, iso
from imagedex.config import Settings

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
    store.put(clean, replace=replace_existing)
    _sync_job(settings, clean)
    return clean


def delete_rule(settings: Settings, name: str) -> None:
    open_store(settings).delete(name)
    _scheduler(settings).remove_job(job_id(name))


def mute_rule(settings: Settings, name: str, now: datetime, period: str | None = None) -> Rule:
    """Mute until now + period (e.g. `2h`), or until unmuted when no period is given."""
    until = "forever" if not period else iso(now + timedelta(seconds=parse_duration(period)))
    store = open_store(settings)
    rule = replace(store.get(name), muted_until=until, updated_at=iso(now))
    return store.put(rule, replace=True)


def unmute_rule(settings: Settings, name: str, now: datetime) -> Rule:
    store = open_store(settings)
    rule = replace(store.get(name), muted_until=None, updated_at=iso(now))
    return store.put(rule, replace=True)


def _sync_job(settings: Settings, rule: Rule) -> None:
    scheduler = _scheduler(settings)
    if rule.per_image:
        scheduler.remove_job(job_id(rule.name))
    else:
        scheduler.set_job(
            job_id(rule.name), JOB_KIND, rule.schedule, settings.timezone, enabled=rule.enabled
        )


def _scheduler(settings: Settings) -> Any:
    from imagedex.scheduler import Scheduler

    return Scheduler.open(settings)


def send_test(settings: Settings, name: str, now: datetime) -> AlertRecord:
    """A test notification through the outbox to every action of the rule (not throttled)."""
    from imagedex.notify import Outbox

    store = open_store(settings)
    rule = store.get(name)
    text = (
        f"This is a test of the imagedex alert rule {rule.name} ({rule.summary()}).\n"
        f"When it fires, notifications like this one go to: {', '.join(rule.actions)}.\n"
    )
    fields = {
        "subject": f"{SUBJECT_PREFIX}test of rule {rule.name}",
        "text": text,
        "link": base_url(settings) + "/",
        "payload": {"rule": rule.name, "kind": rule.kind, "test": True},
    }
    return send_alert(Outbox.open(settings), store, rule, fields, now, status="test")


def history(settings: Settings, rule: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Alerts, newest first, each with the live status of its deliveries from the outbox."""
    store = open_store(settings)
    records = store.history(rule, limit)
    deliveries = _deliveries_by_id(settings, {r.rule for r in records}, limit)
    result = []
    for record in records:
        data = record.to_dict()
        found = [deliveries[i] for i in record.delivery_ids if i in deliveries]
        data["deliveries"] = found
        data["status"] = _overall_status(record, found)
        result.append(data)
    return result


def _deliveries_by_id(settings: Settings, rules: set[str], limit: int) -> dict[str, dict[str, Any]]:
    if not rules:
        return {}
    from imagedex.notify import Outbox

    outbox = Outbox.open(settings)
    found: dict[str, dict[str, Any]] = {}
    for name in rules:
        for delivery in outbox.history(source=source_of(name), limit=max(limit * 4, 100)):
            found[delivery.id] = {
                "id": delivery.id,
                "target": delivery.target,
                "status": delivery.status,
                "attempts": delivery.attempts,
                "last_error": delivery.last_error,
                "sent_at": delivery.sent_at,
            }
    return found


def _overall_status(record: AlertRecord, deliveries: list[dict[str, Any]]) -> str:
    if not deliveries:
        return record.status
    states = {d["status"] for d in deliveries}
    for status in ("failed", "retrying", "queued"):
        if status in states:
            return status
    return "sent"
