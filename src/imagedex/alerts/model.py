"""Alert rules and alert records: what a rule watches, whom it tells, how often at most."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from imagedex.alerts.patterns import compile_pattern
from imagedex.errors import ConfigError

PER_IMAGE_KINDS = ("label", "moderation", "text")
AGGREGATE_KINDS = ("count", "silence")
KINDS = PER_IMAGE_KINDS + AGGREGATE_KINDS
COMPARISONS = (">", ">=", "<", "<=")
DEFAULT_SCHEDULE = "*/5 * * * *"
DEFAULT_THROTTLE = 3600.0
DEFAULT_WINDOW = 3600.0
_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str | float | int, what: str = "duration") -> float:
    """`90s`, `15m`, `1h`, `2d`, `1w` or plain seconds -> seconds."""
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        found = _DURATION.match(text.lower())
        if not found:
            raise ConfigError(f"{what} {text!r} is not a duration like 90s, 15m, 1h, 2d or 1w")
        seconds = float(found.group(1)) * _UNIT_SECONDS[found.group(2)]
    if seconds < 0:
        raise ConfigError(f"{what} must not be negative")
    return seconds


def format_duration(seconds: float) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


@dataclass(frozen=True)
class Rule:
    """One alert rule. Per-image kinds (label, moderation, text) are evaluated as each image is
    indexed; aggregate kinds (count, silence) on `schedule`."""

    name: str
    kind: str
    actions: tuple[str, ...] = ()
    label: str = ""  # kind=label: the label, matched with its parents and aliases
    moderation_label: str = ""  # kind=moderation: one moderation label ("" = any)
    min_confidence: float = 50.0  # label and moderation kinds
    pattern: str = ""  # kind=text
    regex: bool = False  # kind=text: `pattern` is a regular expression, else a substring
    query: str = ""  # kind=count: search syntax (label:dog confidence>=90 ...)
    window: float = DEFAULT_WINDOW  # count: sliding window; silence: the quiet period
    comparison: str = ">"  # kind=count
    threshold: float = 0.0  # kind=count
    schedule: str = DEFAULT_SCHEDULE  # aggregate kinds
    throttle: float = DEFAULT_THROTTLE  # at most one notification per rule per this many s
    enabled: bool = True
    muted_until: str | None = None  # ISO-8601 UTC; "forever" mutes until unmuted
    description: str = ""
    created_at: str = ""
    updated_at: str = ""

    @property
    def per_image(self) -> bool:
        return self.kind in PER_IMAGE_KINDS

    def muted_at(self, now_iso: str) -> bool:
        if self.muted_until is None:
            return False
        return self.muted_until == "forever" or self.muted_until > now_iso

    def summary(self) -> str:
        """One human line: what the rule watches."""
        if self.kind == "label":
            return f"label {self.label} >= {self.min_confidence:g}%"
        if self.kind == "moderation":
            what = self.moderation_label or "any moderation label"
            return f"{what} >= {self.min_confidence:g}%"
        if self.kind == "text":
            return f"text {'matching /' + self.pattern + '/' if self.regex else self.pattern!r}"
        if self.kind == "count":
            return (
                f"count of [{self.query or 'all images'}] in {format_duration(self.window)} "
                f"{self.comparison} {self.threshold:g}"
            )
        return f"no new images for {format_duration(self.window)}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["actions"] = list(self.actions)
        return data

    def redacted(self) -> dict[str, Any]:
        """What lists, the CLI and the API show: targets without tokens from their URLs (a Slack
        webhook's path is its secret, and viewers may read rules)."""
        from imagedex.notify import parse_target

        data = self.to_dict()
        data["actions"] = [parse_target(action).redacted() for action in self.actions]
        return data

    def redacted_actions(self) -> list[str]:
        return list(self.redacted()["actions"])

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rule:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown rule field(s): {', '.join(sorted(unknown))}")
        values = dict(data)
        if "actions" in values:
            actions = values["actions"]
            values["actions"] = (actions,) if isinstance(actions, str) else tuple(actions or ())
        for key in ("window", "throttle"):
            if key in values and values[key] is not None:
                values[key] = parse_duration(values[key], key)
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"invalid rule: {exc}") from exc

    def validated(self) -> Rule:
        """The rule with clean values, or ConfigError naming what is wrong."""
        validate_name(self.name)
        if self.kind not in KINDS:
            raise ConfigError(f"rule kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        try:
            min_confidence = float(self.min_confidence)
            threshold = float(self.threshold)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"confidence and threshold must be numbers: {exc}") from exc
        if not 0 <= min_confidence <= 100:
            raise ConfigError("min_confidence must be between 0 and 100")
        if self.kind == "label" and not self.label.strip():
            raise ConfigError("a label rule needs a label (e.g. --label dog)")
        if self.kind == "text":
            if not self.pattern:
                raise ConfigError("a text rule needs a pattern (e.g. --text invoice)")
            compile_pattern(self.pattern, self.regex)
        if self.kind == "count":
            if self.comparison not in COMPARISONS:
                raise ConfigError(f"comparison must be one of {' '.join(COMPARISONS)}")
            if threshold < 0:
                raise ConfigError("threshold must not be negative")
            _check_query(self.query)
        if self.kind in AGGREGATE_KINDS:
            if self.window <= 0:
                raise ConfigError("the window (or silence period) must be longer than 0")
            _check_schedule(self.schedule)
        if self.throttle < 0:
            raise ConfigError("throttle must not be negative")
        if not self.actions:
            raise ConfigError("a rule needs at least one action (e.g. --to mailto:ops@example.org)")
        _check_targets(self.actions)
        return replace(
            self,
            label=self.label.strip(),
            moderation_label=self.moderation_label.strip(),
            min_confidence=min_confidence,
            threshold=threshold,
            actions=tuple(a.strip() for a in self.actions),
        )


def validate_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise ConfigError(
            f"rule name {name!r} must be a slug: 1-64 lower-case letters, digits, - or _, "
            "starting and ending with a letter or digit"
        )
    return name


def _check_schedule(spec: str) -> None:
    from imagedex.scheduling.schedule import Schedule

    Schedule.parse(spec)


def _check_query(text: str) -> None:
    from imagedex.alerts.aggregate import parse_rule_query

    try:
        parse_rule_query(text)
    except ValueError as exc:  # QuerySyntaxError and SearchQuery's own checks
        raise ConfigError(f"the count query {text!r} is not valid: {exc}") from exc


def _check_targets(actions: tuple[str, ...]) -> None:
    from imagedex.notify import parse_target

    for action in actions:
        parse_target(action.strip())


@dataclass
class AlertRecord:
    """One notification a rule sent (or tried to): the history of alerts."""

    id: int
    rule: str
    kind: str
    fired_at: str
    subject: str
    doc_ids: list[str] = field(default_factory=list)
    value: float | None = None
    threshold: float | None = None
    suppressed: int = 0
    delivery_ids: list[str] = field(default_factory=list)
    status: str = "queued"  # queued | sent | retrying | failed | test

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
