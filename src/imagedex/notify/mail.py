"""`mailto:a@x.org,b@y.org`: one mail to all recipients, through the configured SMTP server."""

from __future__ import annotations

import re
import smtplib
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Self

from imagedex.config import Settings
from imagedex.errors import ConfigError
from imagedex.notify.message import Message
from imagedex.notify.senders import TIMEOUT, SendError
from imagedex.notify.targets import Target

# CR and LF would end a header (Python refuses them rather than let a title inject one); the
# other control characters have no place in a header either
_HEADER_BREAKS = re.compile(r"[\x00-\x1f\x7f]+")
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$"
)


class EmailTarget(Target):
    """`address` is the recipients joined by `,`."""

    kind = "email"
    scheme = "mailto"

    @classmethod
    def parse(cls, rest: str) -> Self:
        addresses = [a.strip() for a in rest.split(",") if a.strip()]
        if not addresses:
            raise ConfigError("mailto: needs at least one e-mail address")
        bad = [a for a in addresses if not _EMAIL.match(a)]
        if bad:
            raise ConfigError(f"not an e-mail address: {', '.join(bad)}")
        return cls(",".join(addresses))

    @property
    def recipients(self) -> list[str]:
        return self.address.split(",")

    def shown(self) -> str:
        return self.address  # addresses are no secret: whoever may see the target sees who gets it

    def send(self, message: Message, settings: Settings, now: datetime, delivery_id: str) -> None:
        if not settings.smtp_host:
            raise SendError("no SMTP server configured (set smtp_host)", permanent=True)
        mail = build_email(message, settings.smtp_from, self.recipients, now)
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
                refused = smtp.send_message(mail, settings.smtp_from, self.recipients)
        except smtplib.SMTPAuthenticationError as exc:
            raise SendError(f"SMTP login refused ({exc.smtp_code})", permanent=True) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise SendError(
                f"SMTP refused every recipient: {_refusals(exc.recipients)}", True
            ) from exc
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


def build_email(
    message: Message, sender: str, recipients: list[str], now: datetime
) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = header_value(message.subject)
    mail["From"] = header_value(sender)
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
            filename=header_value(attachment.filename) or "attachment",
        )
    return mail


def header_value(text: str) -> str:
    """`text` on one line: each run of control characters (CR, LF, tab, ...) becomes one space."""
    return _HEADER_BREAKS.sub(" ", text).strip()


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _refusals(refused: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(f"{rcpt} ({code} {_text(msg)})" for rcpt, (code, msg) in refused.items())
