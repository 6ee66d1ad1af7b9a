"""Count and silence rules: evaluated at scheduled times over a sliding window of the index.

A rule notifies on the edge (not firing -> firing), never again while it stays firing, and
within its throttle period a new edge is only counted as suppressed.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from imagedex.alerts.deliver import send_alert
from imagedex.alerts.messages import aggregate_alert
from imagedex.alerts.model import AlertRecord, Rule
from imagedex.alerts.store import AlertStore, iso
from imagedex.config import Settings
from imagedex.documents import SearchQuery
from imagedex.index.base import SearchIndex

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass(frozen=True)
class Evaluation:
    rule: str
    value: float
    firing: bool
    alert: AlertRecord | None  # the notification sent on this evaluation, if any


def window_query(rule: Rule, now: datetime) -> SearchQuery:
    """Images matching the rule's query ingested in (now - window, now]."""
    base = parse_rule_query(rule.query)
    return replace(
        base,
        date_from=iso(now - timedelta(seconds=rule.window)),
        date_to=iso(now + timedelta(milliseconds=1)),
        limit=1,
        offset=0,
        sort="newest",
    )


def parse_rule_query(text: str) -> SearchQuery:
    """The rule's query in search syntax (`label:person confidence>=90`); '' = every image."""
    if not text.strip():
        return SearchQuery()
    from imagedex.index.query_syntax import parse_query

    return parse_query(text)


def measure(index: SearchIndex, rule: Rule, now: datetime) -> float:
    return float(index.search(window_query(rule, now)).total)


def is_firing(rule: Rule, value: float) -> bool:
    if rule.kind == "silence":
        return value == 0
    return _COMPARE[rule.comparison](value, rule.threshold)


def evaluate_aggregate(
    index: SearchIndex,
    settings: Settings,
    store: AlertStore,
    outbox: Any,
    rule: Rule,
    now: datetime,
) -> Evaluation:
    value = measure(index, rule, now)
    firing = is_firing(rule, value)
    was_firing = store.set_firing(rule.name, firing, value, now)
    if not firing or was_firing or rule.muted_at(iso(now)) or not rule.enabled:
        return Evaluation(rule.name, value, firing, None)
    suppressed = store.admit(rule.name, rule.throttle, now)
    if suppressed is None:
        return Evaluation(rule.name, value, firing, None)
    start = iso(now - timedelta(seconds=rule.window))
    fields = aggregate_alert(settings, rule, value, start, suppressed)
    record = send_alert(
        outbox,
        store,
        rule,
        fields,
        now,
        value=value,
        threshold=rule.threshold if rule.kind == "count" else 0.0,
        suppressed=suppressed,
    )
    return Evaluation(rule.name, value, firing, record)
