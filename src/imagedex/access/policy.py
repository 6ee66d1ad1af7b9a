"""When authentication is required, and the secret that signs links."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
from pathlib import Path

from imagedex.config import Settings
from imagedex.errors import ConfigError

AUTH_MODES = ("auto", "on", "off")
SECRET_FILE_NAME = "secret.key"
_SECRET_BYTES = 32


def is_loopback(host: str) -> bool:
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def auth_required(settings: Settings) -> bool:
    """`auth = "auto"` requires authentication as soon as the API is bound beyond loopback."""
    mode = settings.auth.strip().lower()
    if mode not in AUTH_MODES:
        raise ConfigError(f"setting 'auth' must be one of {', '.join(AUTH_MODES)}, not {mode!r}")
    if mode == "auto":
        return not is_loopback(settings.host)
    return mode == "on"


def load_secret(settings: Settings) -> bytes:
    """`secret_key` if set; else 32 random bytes generated once into data_dir/secret.key (0600)."""
    if settings.secret_key:
        return settings.secret_key.encode("utf-8")
    path = Path(settings.data_dir) / SECRET_FILE_NAME
    if not path.exists():
        create_secret_file(path)
    data = path.read_bytes()
    if len(data) < _SECRET_BYTES:
        raise ConfigError(f"{path} holds {len(data)} bytes, fewer than {_SECRET_BYTES}: remove it")
    return data


def create_secret_file(path: Path) -> None:
    """32 random bytes into a new file at `path` (0600), unless another process made it first.
    secret.key here, webhook.key in notify/web.py."""
    # Written under a temporary name, then hard-linked into place: two processes starting at
    # once both end up reading the one secret that won, never a half-written file.
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(_SECRET_BYTES))
        with contextlib.suppress(FileExistsError):  # another process won the race
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def host_allowed(host_header: str, settings: Settings) -> bool:
    """Without authentication, only requests addressed to this machine by a name a web page cannot
    rebind are served: loopback names, IP literals, the public_url host and `allowed_hosts`.
    (A page on evil.example whose DNS flips to 127.0.0.1 would otherwise read the local API.)"""
    from urllib.parse import urlsplit

    try:
        name = (urlsplit(f"//{host_header.strip()}").hostname or "").lower()
    except ValueError:
        return False
    if not name:
        return False
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    extra = {h.strip().lower() for h in settings.allowed_hosts.split(",") if h.strip()}
    if settings.public_url:
        extra.add((urlsplit(settings.public_url).hostname or "").lower())
    return name in extra
