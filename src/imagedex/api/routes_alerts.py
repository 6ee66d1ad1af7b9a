"""Routes: alert rules (read: viewer; change: admin) and the alert history."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from imagedex.alerts import manage
from imagedex.alerts.model import DEFAULT_SCHEDULE, Rule
from imagedex.alerts.store import AlertStore, iso
from imagedex.api.deps import AdminDep, ServicesDep, ViewerDep
from imagedex.clock import utc_now
from imagedex.errors import ConfigError

router = APIRouter()


class RuleBody(BaseModel):
    """A rule as the API takes it; durations are seconds or text like `1h`."""

    kind: str = Field(description="label | moderation | text | count | silence")
    actions: list[str] = Field(min_length=1, max_length=20)
    label: str = Field(default="", max_length=200)
    moderation_label: str = Field(default="", max_length=200)
    min_confidence: float = 50.0
    pattern: str = Field(default="", max_length=200)
    regex: bool = False
    query: str = Field(default="", max_length=500)
    window: float | str = 3600.0
    comparison: str = ">"
    threshold: float = 0.0
    schedule: str = Field(default=DEFAULT_SCHEDULE, max_length=100)
    throttle: float | str = 3600.0
    enabled: bool = True
    description: str = Field(default="", max_length=1000)


class MuteBody(BaseModel):
    period: str | None = Field(default=None, description="e.g. 2h; none: until unmuted")


def _rule_json(rule: Rule, now: str, store: AlertStore | None = None) -> dict[str, Any]:
    data = rule.redacted()
    data["summary"] = rule.summary()
    data["muted"] = rule.muted_at(now)
    if store is not None:
        data["last_fired_at"] = last_fired(store, rule.name)
    return data


def last_fired(store: AlertStore, name: str) -> str | None:
    """When the rule last notified: its throttle state, or the newest alert of its history
    (the state starts over when a rule is changed; the history keeps what happened). Test
    notifications (`imagedex alert test`) are not firings."""
    fired = [r.fired_at for r in store.history(name, 20) if r.status != "test"][:1]
    return max([t for t in (store.state(name).last_sent_at, *fired) if t], default=None)


def _save(services: Any, name: str, body: RuleBody, replace: bool) -> dict[str, Any]:
    try:
        rule = Rule.from_dict({"name": name, **body.model_dump()})
        saved = manage.save_rule(services.settings, rule, utc_now(), replace_existing=replace)
    except ConfigError as exc:
        status = 404 if replace and "no alert rule" in str(exc) else 400
        if "already exists" in str(exc):
            status = 409
        raise HTTPException(status, str(exc)) from exc
    return _rule_json(saved, iso(utc_now()))


def _missing(exc: ConfigError) -> HTTPException:
    return HTTPException(404 if "no alert rule" in str(exc) else 400, str(exc))


@router.get("/api/alerts", tags=["alerts"])
def list_rules(services: ServicesDep, _who: ViewerDep) -> dict[str, Any]:
    now = iso(utc_now())
    store = manage.open_store(services.settings)
    return {"rules": [_rule_json(r, now, store) for r in store.rules()]}


@router.get("/api/alerts/history", tags=["alerts"])
def alert_history(
    services: ServicesDep,
    who: ViewerDep,
    rule: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    with_errors = who.role == "admin"  # a receiver's reply may quote an internal service
    return {"alerts": manage.history(services.settings, rule, limit, with_errors)}


@router.get("/api/alerts/{name}", tags=["alerts"])
def get_rule(services: ServicesDep, _who: ViewerDep, name: str) -> dict[str, Any]:
    store = manage.open_store(services.settings)
    try:
        data = _rule_json(store.get(name), iso(utc_now()), store)
    except ConfigError as exc:
        raise _missing(exc) from exc
    data["state"] = asdict(store.state(name))
    return data


@router.post("/api/alerts/{name}", status_code=201, tags=["alerts"])
def create_rule(services: ServicesDep, _who: AdminDep, name: str, body: RuleBody) -> dict[str, Any]:
    return _save(services, name, body, replace=False)


@router.put("/api/alerts/{name}", tags=["alerts"])
def replace_rule(
    services: ServicesDep, _who: AdminDep, name: str, body: RuleBody
) -> dict[str, Any]:
    return _save(services, name, body, replace=True)


@router.delete("/api/alerts/{name}", tags=["alerts"])
def delete_rule(services: ServicesDep, _who: AdminDep, name: str) -> dict[str, Any]:
    try:
        manage.delete_rule(services.settings, name)
    except ConfigError as exc:
        raise _missing(exc) from exc
    return {"deleted": name}


@router.post("/api/alerts/{name}/mute", tags=["alerts"])
def mute_rule(
    services: ServicesDep, _who: AdminDep, name: str, body: MuteBody | None = None
) -> dict[str, Any]:
    try:
        rule = manage.mute_rule(services.settings, name, utc_now(), body.period if body else None)
    except ConfigError as exc:
        raise _missing(exc) from exc
    return _rule_json(rule, iso(utc_now()))


@router.post("/api/alerts/{name}/unmute", tags=["alerts"])
def unmute_rule(services: ServicesDep, _who: AdminDep, name: str) -> dict[str, Any]:
    try:
        rule = manage.unmute_rule(services.settings, name, utc_now())
    except ConfigError as exc:
        raise _missing(exc) from exc
    return _rule_json(rule, iso(utc_now()))
