"""Targets that POST JSON to a URL: `slack:https://hooks.slack.com/...` and `webhook:https://...`.
The URL's path and query often hold the receiver's token, so only its host is ever shown. Internal
hosts are refused unless allowed (`notify/addresses.py`): each send resolves the host once and
connects to a checked address, with the URL's own name in `Host` and TLS SNI."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from functools import lru_cache
from http import HTTPStatus
from pathlib import Path
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

import httpx

from imagedex.access.policy import create_secret_file, is_loopback
from imagedex.config import Settings
from imagedex.errors import ConfigError
from imagedex.notify.addresses import (
    SETTING,
    AllowList,
    IPAddress,
    Refused,
    ip_literal,
    literal_refusal,
    resolve,
)
from imagedex.notify.message import Message
from imagedex.notify.senders import TIMEOUT, SendError, encode_body, webhook_body
from imagedex.notify.targets import Target, fingerprint

_SLACK_TEXT_LIMIT = 3000  # Slack refuses section text beyond this
WEBHOOK_KEY_FILE = "webhook.key"
_SECRET_PURPOSE = b"imagedex webhook secret v1\0"  # keeps these apart from other uses of a key


class UrlTarget(Target):
    """`address` is the http(s) URL; subclasses say what they POST."""

    what: ClassVar[str]  # how error messages name the URL: "a webhook URL"

    @classmethod
    def parse(cls, rest: str) -> Self:
        return cls(check_url(rest.strip(), cls.what))

    @property
    def insecure(self) -> bool:
        """Plain http to a host that is not this machine: the body crosses the network in clear."""
        parts = urlsplit(self.address)
        return parts.scheme == "http" and not is_loopback(parts.hostname or "")

    def shown(self) -> str:
        """The URL's host, never its path or query (tokens live there); the fingerprint still
        tells two hooks on one host apart."""
        parts = urlsplit(self.address)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}/…#{fingerprint(self.address)}"

    def check(self, settings: Settings) -> None:
        host = urlsplit(self.address).hostname or ""
        why = literal_refusal(host, allowed_hosts(settings))
        if why:
            raise ConfigError(
                f"{self.what} on {why}: internal hosts are refused unless listed in the "
                f"setting {SETTING}"
            )

    def post(self, body: dict[str, Any], headers: dict[str, str], settings: Settings) -> None:
        url = httpx.URL(self.address)
        host = url.raw_host.decode("ascii")
        https = url.scheme == "https"
        port = url.port or (443 if https else 80)
        try:
            addresses = resolve(host, port, allowed_hosts(settings))
        except Refused as exc:
            raise SendError(f"{self.redacted()}: {exc}", permanent=True) from exc
        except (OSError, UnicodeError) as exc:
            raise SendError(f"{self.redacted()}: cannot resolve {host} ({exc})") from exc
        data = encode_body(body)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "imagedex",
            **headers,
            "Host": url.netloc.decode("ascii"),
        }
        # the certificate is checked against the URL's name, not the address connected to
        extensions = {"sni_hostname": host} if https and ip_literal(host) is None else {}
        response = self._post_to_one_of(url, addresses, data, headers, extensions)
        status = response.status_code
        if 200 <= status < 300:
            return
        # the reply's text stays out of the history: a hook aimed at an internal service must not
        # become a way to read it; the status and its standard reason are enough to act on
        reason = _reason(status)
        if 300 <= status < 400:
            reason += " (redirects are not followed)"
        permanent = 300 <= status < 500 and status not in (408, 429)
        raise SendError(f"{self.redacted()} answered HTTP {status}{reason}", permanent=permanent)

    def _post_to_one_of(
        self,
        url: httpx.URL,
        addresses: list[IPAddress],
        data: bytes,
        headers: dict[str, str],
        extensions: dict[str, Any],
    ) -> httpx.Response:
        """The answer of the first checked address that takes the connection. An explicit
        transport keeps proxies from the environment out (the check must be on the address
        connected to) while SSL_CERT_FILE still names the trusted CAs."""
        transport = httpx.HTTPTransport()
        with httpx.Client(transport=transport, timeout=TIMEOUT, follow_redirects=False) as client:
            for position, address in enumerate(addresses):
                pinned = url.copy_with(host=str(address))
                try:
                    return client.post(pinned, content=data, headers=headers, extensions=extensions)
                except httpx.ConnectError as exc:
                    if position + 1 < len(addresses):
                        continue
                    raise SendError(f"{self.redacted()}: {type(exc).__name__}") from exc
                except httpx.TimeoutException as exc:
                    raise SendError(f"{self.redacted()}: timed out after {TIMEOUT:g} s") from exc
                except httpx.HTTPError as exc:
                    # the exception text may quote the URL, whose path holds the token
                    raise SendError(f"{self.redacted()}: {type(exc).__name__}") from exc
        raise SendError(f"{self.redacted()}: no address to connect to")


class SlackTarget(UrlTarget):
    """A Slack incoming webhook."""

    kind = scheme = "slack"
    what = "a Slack webhook URL"

    def send(self, message: Message, settings: Settings, now: datetime, delivery_id: str) -> None:
        self.post(slack_body(message), {"X-Imagedex-Delivery": delivery_id}, settings)


class WebhookTarget(UrlTarget):
    """Any receiver of signed JSON (see `signature`)."""

    kind = scheme = "webhook"
    what = "a webhook URL"

    def send(self, message: Message, settings: Settings, now: datetime, delivery_id: str) -> None:
        body = webhook_body(message, now)
        headers = webhook_headers(body, webhook_secret(settings, self.address), now)
        headers["X-Imagedex-Delivery"] = delivery_id
        self.post(body, headers, settings)


def check_url(url: str, what: str) -> str:
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


@lru_cache(maxsize=8)
def _allow_list(text: str) -> AllowList:
    return AllowList.parse(text)


def allowed_hosts(settings: Settings) -> AllowList:
    return _allow_list(settings.delivery_allowed_hosts)


def _reason(status: int) -> str:
    try:
        return f" {HTTPStatus(status).phrase}"
    except ValueError:  # a code no standard names: only the number is shown
        return ""


def slack_body(message: Message) -> dict[str, Any]:
    """An incoming-webhook body: `text` for notifications, blocks with thumbnail and button."""
    summary = f"*{message.subject}*\n{message.text}"
    if len(summary) > _SLACK_TEXT_LIMIT:
        summary = summary[: _SLACK_TEXT_LIMIT - 1] + "…"
    section: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": summary}}
    if message.image_url:
        section["accessory"] = {
            "type": "image",
            "image_url": message.image_url,
            "alt_text": message.subject[:200] or "image",
        }
    blocks: list[dict[str, Any]] = [section]
    if message.link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open in imagedex"},
                        "url": message.link,
                    }
                ],
            }
        )
    text = f"{message.subject}: {message.text}" if message.text else message.subject
    return {"text": text[:_SLACK_TEXT_LIMIT], "blocks": blocks}


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256(secret, timestamp + "." + body): receivers check it and
    reject stale timestamps, so a captured request cannot be replayed later."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def webhook_headers(body: dict[str, Any], secret: str, now: datetime) -> dict[str, str]:
    timestamp = str(int(now.timestamp()))
    return {
        "X-Imagedex-Timestamp": timestamp,
        "X-Imagedex-Signature": signature(secret, timestamp, encode_body(body)),
    }


def webhook_secret(settings: Settings, url: str) -> str:
    """The key webhooks to `url` are signed with: `webhook_secret` when set (one for every
    webhook), else one of this webhook's own, derived from a key generated once into
    data_dir/webhook.key (0600), so one receiver cannot sign as imagedex to another and nothing
    but that file needs keeping. `imagedex config webhook-secret URL` shows it to the admin."""
    if settings.webhook_secret:
        return settings.webhook_secret
    path = Path(settings.data_dir) / WEBHOOK_KEY_FILE
    if not path.exists():
        create_secret_file(path)
    key = path.read_bytes()
    if len(key) < 32:
        raise ConfigError(f"{path} holds {len(key)} bytes, fewer than 32: remove it")
    return hmac.new(key, _SECRET_PURPOSE + url.encode(), hashlib.sha256).hexdigest()
