"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives, optionally with
STARTTLS or implicit TLS (a self-signed certificate made here) and AUTH."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: EmailMessage
    login: str | None


@dataclass
class SmtpReceiver:
    host: str
    port: int
    cert_file: Path | None
    mails: list[Mail] = field(default_factory=list)
    logins: list[tuple[str, str, bool]] = field(default_factory=list)  # user, password, accepted


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost (cert file doubles as the CA)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imagedex test SMTP")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def smtp_receiver(
    folder: Path,
    tls: str = "none",  # none | starttls | ssl
    credentials: tuple[str, str] | None = None,
) -> Iterator[SmtpReceiver]:
    cert_file: Path | None = None
    kwargs: dict[str, Any] = {}
    if tls != "none":
        cert_file, key_file = make_certificate(folder)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)
        if tls == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        else:
            kwargs.update(ssl_context=context)
    state = SmtpReceiver("127.0.0.1", _free_port(), cert_file)

    def authenticate(
        _server: Any, session: Any, _envelope: Any, _mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword) or credentials is None:
            return AuthResult(success=False, handled=False)
        user, password = data.login.decode(), data.password.decode()
        ok = (user, password) == credentials
        state.logins.append((user, password, ok))
        return AuthResult(success=ok, handled=False)

    if credentials is not None:
        # with implicit TLS aiosmtpd cannot tell (and warns, per connection: filter
        # "Requiring AUTH while not requiring TLS" in tests that use tls="ssl") the session is encrypted: it is, from the start
        kwargs.update(
            authenticator=authenticate, auth_required=True, auth_require_tls=tls == "starttls"
        )

    class Handler:
        async def handle_DATA(self, _server: Any, session: Any, envelope: Any) -> str:
            message = message_from_bytes(envelope.content, policy=policy.default)
            assert isinstance(message, EmailMessage)
            login = state.logins[-1][0] if session.authenticated and state.logins else None
            state.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), message, login))
            return "250 OK"

    controller = Controller(Handler(), hostname=state.host, port=state.port, **kwargs)
    controller.start()
    try:
        yield state
    finally:
        controller.stop()
