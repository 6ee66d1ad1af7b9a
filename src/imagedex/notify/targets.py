"""Where a notification goes: one `Target` subclass per kind, found by its scheme.

A kind is a class that knows its `scheme`, how to read and check what follows `scheme:`, what of
it logs and histories may show, and how to send. Kinds are registered in `TARGET_KINDS` under their
scheme; an installed package adds one through the `imagedex.notify_targets` entry point group:

    [project.entry-points."imagedex.notify_targets"]
    pigeon = "my_package.pigeon:PigeonTarget"
"""

from __future__ import annotations

import hashlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, Self
from urllib.parse import urlsplit

from imagedex.errors import ConfigError
from imagedex.registry import Registry, UnknownNameError

if TYPE_CHECKING:
    from imagedex.config import Settings
    from imagedex.notify.message import Message

log = logging.getLogger(__name__)


@dataclass(frozen=True, repr=False)
class Target(ABC):
    """One parsed, validated target. `address` is what follows `scheme:`, normalised; `spec`
    gives back the text `parse_target` reads (secrets included), `redacted()` what may be shown."""

    kind: ClassVar[str]  # the kind's name in code and tests: "email" for mailto:
    scheme: ClassVar[str]  # the prefix of its spec; the name it is registered under

    address: str

    @classmethod
    @abstractmethod
    def parse(cls, rest: str) -> Self:
        """The target for the text after `scheme:`, or ConfigError saying what is wrong."""

    @abstractmethod
    def send(self, message: Message, settings: Settings, now: datetime, delivery_id: str) -> None:
        """Send once, or raise `imagedex.notify.senders.SendError` (permanent when retrying
        cannot help)."""

    def check(self, settings: Settings) -> None:  # noqa: B027 - optional: most kinds need none
        """ConfigError when the settings do not let this target be used (an internal host, a
        folder outside the delivery root). Called when a target is saved, with what the text
        alone tells; `send` checks again against what it actually reaches."""

    def shown(self) -> str:
        """The part of the address that logs, histories and the API may show. Nothing by default,
        only a fingerprint that tells two targets apart: a kind that knows which part of its
        address holds no secret overrides this."""
        return f"…#{fingerprint(self.address)}"

    @property
    def insecure(self) -> bool:
        """True when the message crosses the network in clear (warned about when parsed)."""
        return False

    @property
    def spec(self) -> str:
        return f"{self.scheme}:{self.address}"

    def redacted(self) -> str:
        return f"{self.scheme}:{self.shown()}"

    def __str__(self) -> str:
        return self.redacted()

    def __repr__(self) -> str:  # the address may hold a token: never show it, even in tracebacks
        return f"{type(self).__name__}({self.redacted()!r})"


def fingerprint(address: str) -> str:
    return hashlib.sha256(address.encode()).hexdigest()[:8]


TARGET_KINDS: Registry[type[Target]] = Registry("delivery target kind", "imagedex.notify_targets")
TARGET_KINDS.register("mailto", "imagedex.notify.mail:EmailTarget")
TARGET_KINDS.register("slack", "imagedex.notify.web:SlackTarget")
TARGET_KINDS.register("webhook", "imagedex.notify.web:WebhookTarget")
TARGET_KINDS.register("folder", "imagedex.notify.folder:FolderTarget")

_BARE_URL_SCHEMES = ("http", "https")
_SLACK_HOST = "hooks.slack.com"


def parse_target(text: str, warn: bool = True, settings: Settings | None = None) -> Target:
    """Read `SCHEME:ADDRESS` for a registered scheme (`mailto:a@x.org,b@y.org`, `slack:https://...`,
    `webhook:https://...`, `folder:/path`) or a bare http(s) URL (one on hooks.slack.com is a Slack
    target, any other a webhook). Bad input raises ConfigError; plain http to another host is
    allowed but logged as a warning when `warn`. With `settings` (when a target is saved), what
    they forbid is refused too (`Target.check`)."""
    raw = (text or "").strip()
    scheme, sep, rest = raw.partition(":")
    scheme = scheme.lower()
    if not sep:
        choices = ", ".join(f"{name}:" for name in TARGET_KINDS.names())
        raise ConfigError(f"unknown delivery target {raw!r}: use {choices} or an http(s) URL")
    if scheme in _BARE_URL_SCHEMES:  # checked as a webhook URL, then kept as Slack's if it is
        target = TARGET_KINDS.resolve("webhook").parse(raw)
        if urlsplit(target.address).hostname == _SLACK_HOST:
            target = TARGET_KINDS.resolve("slack")(target.address)
    else:
        if scheme not in TARGET_KINDS:
            raise UnknownNameError(f"{TARGET_KINDS.unknown(scheme)}, or an http(s) URL")
        kind = TARGET_KINDS.resolve(scheme)
        if kind.scheme != scheme:  # its specs would not parse back to it
            raise ConfigError(f"{kind.__name__} is registered as {scheme!r}, not {kind.scheme!r}")
        target = kind.parse(rest)
    if settings is not None:
        target.check(settings)
    if warn and target.insecure:
        log.warning("%s uses plain http to another host: prefer https", target.redacted())
    return target


def check_allowed(specs: Iterable[str], settings: Settings) -> None:
    """ConfigError for the first target the settings forbid (an internal host, a folder outside
    the delivery root): what saving a report or an alert rule checks."""
    for spec in specs:
        parse_target(spec.strip(), warn=False, settings=settings)
