"""Users, API keys and browser sessions in SQLite (data_dir/auth.sqlite3).

Passwords are kept as scrypt hashes with a per-user salt; API keys and session tokens only as
SHA-256 digests, so a copy of this file lets nobody log in or call the API.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from imagedex.access.roles import AccessError, check_role
from imagedex.config import Settings
from imagedex.db import Database

STORE_FILE_NAME = "auth.sqlite3"
KEY_PREFIX = "idx_"
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}$")
# scrypt cost: ~16 MiB and tens of milliseconds per check, too slow to guess offline in bulk
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_KEY_TOUCH_SECONDS = 60.0  # last_used_at is rewritten at most this often per key

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_used_at REAL,
    revoked_at REAL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_sha256 TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions(user_name);
"""


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hash_password(password: str, salt: bytes | None = None) -> str:
    """`scrypt$n$r$p$<salt hex>$<hash hex>`: the parameters travel with the hash."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${salt.hex()}${digest.hex()}"


def password_matches(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_hex, hash_hex = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode("utf-8"),
            salt=bytes.fromhex(salt_hex),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(hash_hex) // 2,
            maxmem=256 * int(r) * int(n) + (1 << 20),
        )
    except ValueError:
        return False
    return hmac.compare_digest(digest.hex(), hash_hex)


@functools.cache
def _dummy_hash() -> str:
    """Checked when the user does not exist, so a wrong name costs as long as a wrong password."""
    return hash_password(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class User:
    name: str
    role: str
    created_at: str | None


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    role: str
    created_at: str | None
    last_used_at: str | None
    revoked_at: str | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True)
class Session:
    token: str  # known only at creation; the store keeps its digest
    user: User
    csrf_token: str
    expires_at: float


def check_name(name: str, what: str = "user name") -> str:
    if not _NAME.match(name):
        raise AccessError(
            f"{what} {name!r} is not allowed: 1-64 letters, digits or _ . @ + -, "
            "starting with a letter or digit"
        )
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccessError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccessError(f"the password is longer than {MAX_PASSWORD_LENGTH} characters")
    return password


def split_key(token: str) -> tuple[str, str] | None:
    """`idx_<id>_<secret>` -> (id, secret), or None when the text is not shaped like a key."""
    if not token.startswith(KEY_PREFIX):
        return None
    parts = token[len(KEY_PREFIX) :].split("_", 1)
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None
    return parts[0], parts[1]


class AccessStore:
    """Thread-safe; several processes (the server and the CLI) may share the file."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._database = Database(
            path, [_SCHEMA], timeout=10.0, synchronous="FULL", foreign_keys=True
        )

    @classmethod
    def open(cls, settings: Settings, clock: Callable[[], float] = time.time) -> AccessStore:
        return cls(Path(settings.data_dir) / STORE_FILE_NAME, clock)

    def close(self) -> None:
        self._database.close()

    def _rows(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        return self._database.connection().execute(sql, args).fetchall()

    def _write(self, sql: str, *args: object) -> int:
        return self._database.connection().execute(sql, args).rowcount

    # users ------------------------------------------------------------------------------------

    def add_user(self, name: str, role: str, password: str) -> User:
        check_name(name)
        check_role(role)
        password_hash = hash_password(check_password(password))
        try:
            self._write(
                "INSERT INTO users (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
                name,
                role,
                password_hash,
                self._clock(),
            )
        except sqlite3.IntegrityError as exc:
            raise AccessError(f"a user named {name!r} already exists") from exc
        return self.user(name) or User(name, role, None)

    def user(self, name: str) -> User | None:
        rows = self._rows("SELECT name, role, created_at FROM users WHERE name = ?", name)
        return _user(rows[0]) if rows else None

    def users(self) -> list[User]:
        return [
            _user(r) for r in self._rows("SELECT name, role, created_at FROM users ORDER BY name")
        ]

    def set_password(self, name: str, password: str) -> None:
        """Also ends the user's sessions: a new password logs out every browser."""
        password_hash = hash_password(check_password(password))
        if not self._write(
            "UPDATE users SET password_hash = ? WHERE name = ?", password_hash, name
        ):
            raise AccessError(f"no user named {name!r}")
        self._write("DELETE FROM sessions WHERE user_name = ?", name)

    def remove_user(self, name: str) -> None:
        if not self._write("DELETE FROM users WHERE name = ?", name):
            raise AccessError(f"no user named {name!r}")
        self._write("DELETE FROM sessions WHERE user_name = ?", name)

    def authenticate(self, name: str, password: str) -> User | None:
        rows = self._rows(
            "SELECT name, role, created_at, password_hash FROM users WHERE name = ?", name
        )
        stored = str(rows[0][3]) if rows else _dummy_hash()
        matches = password_matches(password, stored)
        return _user(rows[0][:3]) if rows and matches else None

    # API keys ---------------------------------------------------------------------------------

    def create_key(self, name: str, role: str) -> tuple[ApiKey, str]:
        """A new key and its full text `idx_<id>_<secret>`, which is shown this once only."""
        name = name.strip()
        if not name or len(name) > 100:
            raise AccessError("an API key needs a name of 1-100 characters (what uses it)")
        check_role(role)
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        self._write(
            "INSERT INTO api_keys (id, name, role, secret_sha256, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            key_id,
            name,
            role,
            _sha256(secret),
            self._clock(),
        )
        key = self.key(key_id)
        assert key is not None
        return key, f"{KEY_PREFIX}{key_id}_{secret}"

    def key(self, key_id: str) -> ApiKey | None:
        rows = self._rows(_KEY_COLUMNS + " WHERE id = ?", key_id)
        return _key(rows[0]) if rows else None

    def api_keys(self, include_revoked: bool = True) -> list[ApiKey]:
        where = "" if include_revoked else " WHERE revoked_at IS NULL"
        return [_key(r) for r in self._rows(_KEY_COLUMNS + where + " ORDER BY created_at, id")]

    def revoke_key(self, key_id: str) -> ApiKey:
        changed = self._write(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            self._clock(),
            key_id,
        )
        key = self.key(key_id)
        if key is None:
            raise AccessError(f"no API key with id {key_id!r}")
        if not changed:
            raise AccessError(f"API key {key_id!r} was already revoked")
        return key

    def verify_key(self, token: str) -> ApiKey | None:
        """The live key `token` names, or None (unknown, wrong secret or revoked)."""
        parts = split_key(token.strip())
        if parts is None:
            return None
        key_id, secret = parts
        rows = self._rows(
            "SELECT secret_sha256, revoked_at, last_used_at FROM api_keys WHERE id = ?", key_id
        )
        if not rows:
            return None
        stored, revoked_at, last_used_at = rows[0]
        if not hmac.compare_digest(str(stored), _sha256(secret)) or revoked_at is not None:
            return None
        now = self._clock()
        if last_used_at is None or now - float(str(last_used_at)) >= _KEY_TOUCH_SECONDS:
            self._write("UPDATE api_keys SET last_used_at = ? WHERE id = ?", now, key_id)
        return self.key(key_id)

    def has_admin(self) -> bool:
        """Whether anyone can administer: an admin user or a live admin key."""
        rows = self._rows(
            "SELECT 1 FROM users WHERE role = 'admin' UNION ALL "
            "SELECT 1 FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL LIMIT 1"
        )
        return bool(rows)

    # sessions ---------------------------------------------------------------------------------

    def create_session(self, user: User, ttl: float) -> Session:
        now = self._clock()
        token = secrets.token_urlsafe(32)
        csrf_token = secrets.token_urlsafe(32)
        self._write("DELETE FROM sessions WHERE expires_at <= ?", now)
        self._write(
            "INSERT INTO sessions (token_sha256, user_name, csrf_token, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?)",
            _sha256(token),
            user.name,
            csrf_token,
            now,
            now + ttl,
        )
        return Session(token, user, csrf_token, now + ttl)

    def session(self, token: str) -> Session | None:
        """The unexpired session of a still-existing user, with the user's current role."""
        rows = self._rows(
            "SELECT u.name, u.role, u.created_at, s.csrf_token, s.expires_at "
            "FROM sessions s JOIN users u ON u.name = s.user_name "
            "WHERE s.token_sha256 = ? AND s.expires_at > ?",
            _sha256(token),
            self._clock(),
        )
        if not rows:
            return None
        name, role, created_at, csrf_token, expires_at = rows[0]
        return Session(
            token, _user((name, role, created_at)), str(csrf_token), float(str(expires_at))
        )

    def end_session(self, token: str) -> None:
        self._write("DELETE FROM sessions WHERE token_sha256 = ?", _sha256(token))


_KEY_COLUMNS = "SELECT id, name, role, created_at, last_used_at, revoked_at FROM api_keys"


def _user(row: tuple[object, ...]) -> User:
    return User(str(row[0]), str(row[1]), _iso(_float(row[2])))


def _key(row: tuple[object, ...]) -> ApiKey:
    return ApiKey(
        str(row[0]),
        str(row[1]),
        str(row[2]),
        _iso(_float(row[3])),
        _iso(_float(row[4])),
        _iso(_float(row[5])),
    )


def _float(value: object) -> float | None:
    return None if value is None else float(str(value))
