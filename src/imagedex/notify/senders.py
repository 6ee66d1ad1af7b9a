"""What the target kinds share when sending: the error they raise, the network timeout, the JSON
body of a message. Each kind sends in its own `Target.send`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from imagedex.config import Settings
from imagedex.errors import ConfigError
from imagedex.notify.message import Message
from imagedex.notify.targets import Target

TIMEOUT = 10.0  # seconds per connect/read: a hung receiver must not hold the delivery loop


class SendError(Exception):
    """A send failed; `permanent` ones are not retried (the receiver refused the message)."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def is_permanent(exc: BaseException) -> bool:
    """Whether retrying cannot help. A `SendError` says so itself; a target that no longer parses
    (`ConfigError`) and errors about the message's own data (ValueError, TypeError, a missing
    key, RecursionError) come back the same every time; network and file errors may pass."""
    if isinstance(exc, SendError):
        return exc.permanent
    if isinstance(exc, OSError):
        return False
    return isinstance(exc, ConfigError | ValueError | TypeError | LookupError | RecursionError)


def send(
    target: Target, message: Message, settings: Settings, now: datetime, delivery_id: str
) -> None:
    target.send(message, settings, now, delivery_id)


def webhook_body(message: Message, now: datetime) -> dict[str, Any]:
    """The message as webhooks receive it and folders keep it beside the text."""
    return {
        "subject": message.subject,
        "text": message.text,
        "link": message.link,
        "image_url": message.image_url,
        "payload": message.payload,
        "sent_at": now.isoformat(),
    }


def encode_body(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
