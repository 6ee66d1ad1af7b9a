"""Where a notification goes: parsed, validated, and shown without its secrets."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from imagedex.errors import ConfigError

log = logging.getLogger(__name__)

KINDS = ("email", "slack", "webhook", "folder")
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$"
)


@dataclass(frozen=True)
class Target:
    """`address` is the URL (slack, webhook), the folder path, or the recipients joined by `,`."""

    kind: str
    address: str

    @property
    def recipients(self) -> list[str]:
        return self.address.split(",") if self.kind == "email" else []

    @property
    def spec(self) -> str:
        """The canonical text form, which `parse_target` reads back (secrets included)."""
        prefix = {"email": "mailto", "slack": "slack", "webhook": "webhook", "folder": "folder"}
        return f"{prefix[self.kind]}:{self.address}"

    @property
    def insecure(self) -> bool:
        """Plain http to a host that is not this machine: the body crosses the network in clear."""
        if self.kind not in ("slack", "webhook"):
            return False
        parts = urlsplit(self.address)
        return parts.scheme == "http" and not _is_loopback(parts.hostname or "")

    def redacted(self) -> str:
        """What logs and histories show: the URL's host, never its path or query (tokens live
        there); a short fingerprint still tells two hooks on one host apart."""
        if self.kind not in ("slack", "webhook"):
            return self.spec
        parts = urlsplit(self.address)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port else ""
        fingerprint = hashlib.sha256(self.address.encode()).hexdigest()[:8]
        return f"{self.kind}:{parts.scheme}://{host}{port}/…#{fingerprint}"

    def __str__(self) -> str:
        return self.redacted()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(url: str, what: str) -> str:
    if not url or any(c.isspace() for c in url):
        raise ConfigError(f"{what} must be an http(s) URL without spaces")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"{what} must start with https:// (or http://), not {parts.scheme!r}")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            f"{what} must not carry credentials (user:password@); "
            "use a URL token or the webhook secret instead"
        )
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise ConfigError(f"{what} has an invalid port") from exc
    if not parts.hostname:
        raise ConfigError(f"{what} has no host")
    if "…" in url:  # a redacted URL sent back (GET, edit, PUT) would silently replace the real one
        raise ConfigError(f"{what} is a redacted URL (it contains '…'); give the full URL again")
    return url


def _check_emails(text: str) -> str:
    addresses = [a.strip() for a in text.split(",") if a.strip()]
    if not addresses:
        raise ConfigError("mailto: needs at least one e-mail address")
    bad = [a for a in addresses if not _EMAIL.match(a)]
    if bad:
        raise ConfigError(f"not an e-mail address: {', '.join(bad)}")
    return ",".join(addresses)


def parse_target(text: str, warn: bool = True) -> Target:
    """Read `mailto:a@x.org,b@y.org`, `slack:https://...`, `webhook:https://...` (or a bare
    http(s) URL; one on hooks.slack.com is a Slack target) or `folder:/path`. Bad input raises
    ConfigError; plain http to another host is allowed but logged as a warning when `warn`."""
    raw = (text or "").strip()
    scheme, sep, rest = raw.partition(":")
    scheme = scheme.lower()
    if not sep:
        raise ConfigError(
            f"unknown delivery target {raw!r}: use mailto:ADDRESS, slack:URL, webhook:URL, "
            "folder:PATH or an http(s) URL"
        )
    if scheme == "mailto":
        target = Target("email", _check_emails(rest))
    elif scheme == "slack":
        target = Target("slack", _check_url(rest.strip(), "a Slack webhook URL"))
    elif scheme == "webhook":
        target = Target("webhook", _check_url(rest.strip(), "a webhook URL"))
    elif scheme in ("http", "https"):
        url = _check_url(raw, "a webhook URL")
        kind = "slack" if urlsplit(url).hostname == "hooks.slack.com" else "webhook"
        target = Target(kind, url)
    elif scheme == "folder":
        path = rest.strip()
        if not path:
            raise ConfigError("folder: needs a directory path")
        target = Target("folder", str(Path(path).expanduser()))
    else:
        raise ConfigError(
            f"unknown delivery target kind {scheme!r}: use mailto:, slack:, webhook:, folder: "
            "or an http(s) URL"
        )
    if warn and target.insecure:
        log.warning("%s uses plain http to another host: prefer https", target.redacted())
    return target
