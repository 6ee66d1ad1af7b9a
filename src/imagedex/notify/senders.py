"""One function per target kind that sends a message once, or raises SendError."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import smtplib
import ssl
import tempfile
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import httpx

from imagedex.config import Settings
from imagedex.notify.message import Message
from imagedex.notify.targets import Target

TIMEOUT = 10.0  # seconds per connect/read: a hung receiver must not hold the delivery loop
_SLACK_TEXT_LIMIT = 3000  # Slack refuses section text beyond this


class SendError(Exception):
    """A send failed; `permanent` ones are not retried (the receiver refused the message)."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def send(
    target: Target, message: Message, settings: Settings, now: datetime, delivery_id: str
) -> None:
    if target.kind == "email":
        send_email(target, message, settings, now)
    elif target.kind == "slack":
        post_json(target, slack_body(message), {"X-Imagedex-Delivery": delivery_id})
    elif target.kind == "webhook":
        body = webhook_body(message, now)
        headers = webhook_headers(body, settings.webhook_secret, now)
        headers["X-Imagedex-Delivery"] = delivery_id
        post_json(target, body, headers)
    elif target.kind == "folder":
        write_to_folder(target, message, now, delivery_id)
    else:  # parse_target never makes one
        raise SendError(f"unknown target kind {target.kind!r}", permanent=True)


# -- e-mail ------------------------------------------------------------------------------------


def build_email(
    message: Message, sender: str, recipients: list[str], now: datetime
) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = message.subject
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["Date"] = format_datetime(now)
    mail["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    text = message.text + (f"\n\n{message.link}\n" if message.link else "")
    mail.set_content(text)
    if message.html:
        mail.add_alternative(message.html, subtype="html")
    for attachment in message.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        mail.add_attachment(
            attachment.data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=attachment.filename,
        )
    return mail


def send_email(target: Target, message: Message, settings: Settings, now: datetime) -> None:
    if not settings.smtp_host:
        raise SendError("no SMTP server configured (set smtp_host)", permanent=True)
    mail = build_email(message, settings.smtp_from, target.recipients, now)
    security = settings.smtp_security.lower()
    if security not in ("starttls", "ssl", "none"):
        raise SendError(f"smtp_security must be starttls, ssl or none, not {security!r}", True)
    try:
        smtp: smtplib.SMTP
        if security == "ssl":
            smtp = smtplib.SMTP_SSL(
                settings.smtp_host,
                settings.smtp_port,
                timeout=TIMEOUT,
                context=ssl.create_default_context(),
            )
        else:
            smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=TIMEOUT)
        with smtp:
            if security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password)
            refused = smtp.send_message(mail, settings.smtp_from, target.recipients)
    except smtplib.SMTPAuthenticationError as exc:
        raise SendError(f"SMTP login refused ({exc.smtp_code})", permanent=True) from exc
    except smtplib.SMTPRecipientsRefused as exc:
        raise SendError(f"SMTP refused every recipient: {_refusals(exc.recipients)}", True) from exc
    except smtplib.SMTPResponseException as exc:
        detail = _text(exc.smtp_error)
        raise SendError(
            f"SMTP error {exc.smtp_code}: {detail}", permanent=500 <= exc.smtp_code < 600
        ) from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise SendError(f"SMTP server: {exc}", permanent=True) from exc
    except ssl.SSLCertVerificationError as exc:
        raise SendError(f"SMTP TLS certificate not trusted: {exc.verify_message}") from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise SendError(f"SMTP {settings.smtp_host}:{settings.smtp_port}: {exc}") from exc
    if refused:
        # accepted for some: retrying would send the others a duplicate
        raise SendError(f"SMTP refused some recipients: {_refusals(refused)}", permanent=True)


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _refusals(refused: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(f"{rcpt} ({code} {_text(msg)})" for rcpt, (code, msg) in refused.items())


# -- Slack and webhooks ------------------------------------------------------------------------


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


def webhook_body(message: Message, now: datetime) -> dict[str, Any]:
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


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256(secret, timestamp + "." + body): receivers check it and
    reject stale timestamps, so a captured request cannot be replayed later."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def webhook_headers(body: dict[str, Any], secret: str, now: datetime) -> dict[str, str]:
    timestamp = str(int(now.timestamp()))
    headers = {"X-Imagedex-Timestamp": timestamp}
    if secret:
        headers["X-Imagedex-Signature"] = signature(secret, timestamp, encode_body(body))
    return headers


def post_json(target: Target, body: dict[str, Any], headers: dict[str, str]) -> None:
    data = encode_body(body)
    try:
        response = httpx.post(
            target.address,
            content=data,
            headers={"Content-Type": "application/json", "User-Agent": "imagedex", **headers},
            timeout=TIMEOUT,
            follow_redirects=False,
        )
    except httpx.TimeoutException as exc:
        raise SendError(f"{target.redacted()}: timed out after {TIMEOUT:g} s") from exc
    except httpx.HTTPError as exc:
        # the exception text may quote the URL, whose path holds the token
        raise SendError(f"{target.redacted()}: {type(exc).__name__}") from exc
    status = response.status_code
    if 200 <= status < 300:
        return
    detail = _scrub(response.text[:200], target)
    permanent = 300 <= status < 500 and status not in (408, 429)
    raise SendError(f"{target.redacted()} answered HTTP {status}: {detail}", permanent=permanent)


def _scrub(text: str, target: Target) -> str:
    path = httpx.URL(target.address).raw_path.decode(errors="replace")
    text = text.replace(target.address, target.redacted())
    return text.replace(path, "/…") if len(path) > 1 else text


# -- folder ------------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^\w.\-]+")


def write_to_folder(target: Target, message: Message, now: datetime, delivery_id: str) -> None:
    """Attachments first, then `<stem>.txt`, then `<stem>.json` last: a watcher that waits for
    the JSON finds everything complete. Each file appears atomically (write, then rename)."""
    folder = Path(target.address)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{now.strftime('%Y%m%dT%H%M%SZ')}-{delivery_id[:8]}"
        files = []
        for attachment in message.attachments:
            name = f"{stem}-{_UNSAFE.sub('_', attachment.filename).strip('._') or 'attachment'}"
            _write_atomic(folder / name, attachment.data)
            files.append({"filename": name, "content_type": attachment.content_type})
        _write_atomic(folder / f"{stem}.txt", f"{message.subject}\n\n{message.text}\n".encode())
        meta = {**webhook_body(message, now), "attachments": files}
        _write_atomic(folder / f"{stem}.json", json.dumps(meta, indent=2).encode())
    except OSError as exc:
        raise SendError(f"cannot write to {folder}: {exc}") from exc


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
