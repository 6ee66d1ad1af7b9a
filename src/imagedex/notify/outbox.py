"""Deliveries persisted in data_dir/outbox.sqlite3 and sent by whichever process claims them.

`enqueue` only writes a row, so a caller (the worker, an API request) never waits on a mail server.
`deliver_due` claims each due row with one conditional UPDATE that takes a lease; SQLite serialises
writers, so exactly one process wins the row and the others see `rowcount == 0`. A process that dies
while sending leaves its lease to expire, after which another process sends again: delivery is at
least once across crashes (receivers can de-duplicate on `X-Imagedex-Delivery`), never twice
concurrently while the sender is alive.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from imagedex.clock import iso_from_seconds, utc_now
from imagedex.config import Settings
from imagedex.db import Database
from imagedex.errors import ImagedexError
from imagedex.notify.message import Attachment, Message
from imagedex.notify.senders import SendError, is_permanent, send
from imagedex.notify.targets import parse_target

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
STATUSES = ("queued", "sent", "retrying", "failed")
LEASE_SECONDS = 300.0  # longer than any one send (connect + SMTP dialogue, 10 s per step)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    target TEXT NOT NULL,
    target_redacted TEXT NOT NULL,
    subject TEXT NOT NULL,
    message TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at REAL NOT NULL,
    next_attempt REAL NOT NULL,
    sent_at REAL,
    lease_owner TEXT,
    lease_until REAL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_attempt);
CREATE INDEX IF NOT EXISTS deliveries_source ON deliveries (source, created_at);
CREATE TABLE IF NOT EXISTS attachments (
    delivery_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (delivery_id, position)
);
"""


# Histories made before replies were redacted quote up to 200 characters of the reply after
# "answered HTTP nnn": keep the status only (the reply may quote an internal service).
_REDACT_REPLIES = """
UPDATE deliveries SET last_error = substr(last_error, 1, instr(last_error, ' answered HTTP ') + 17)
WHERE last_error LIKE '% answered HTTP ___: %';
"""


class DeliveryError(ImagedexError):
    """A delivery cannot be found or cannot be retried."""


@dataclass(frozen=True)
class Delivery:
    id: str
    source: str
    target: str  # redacted
    subject: str
    status: str
    attempts: int
    last_error: str | None
    created_at: str
    sent_at: str | None
    next_attempt: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self, with_error: bool = True) -> dict[str, Any]:
        """Where it stands, for histories. `last_error` can quote a receiver's reply, so callers
        show it only to admins (a webhook aimed at an internal address must not become a
        way for viewers to read it)."""
        data = {
            "id": self.id,
            "target": self.target,
            "status": self.status,
            "attempts": self.attempts,
            "sent_at": self.sent_at,
        }
        if with_error:
            data["last_error"] = self.last_error
        return data


class Outbox:
    def __init__(self, path: Path, settings: Settings, clock: Clock | None = None) -> None:
        self.path = Path(path)
        self.settings = settings
        self._clock = clock or utc_now
        self._owner = uuid.uuid4().hex
        self._database = Database(self.path, [_SCHEMA, _REDACT_REPLIES])

    @classmethod
    def open(cls, settings: Settings, clock: Clock | None = None) -> Outbox:
        return cls(settings.data_dir / "outbox.sqlite3", settings, clock)

    def _db(self) -> sqlite3.Connection:
        return self._database.connection()

    def _now(self) -> float:
        return self._clock().timestamp()

    def enqueue(self, target: str, message: Message, source: str) -> str:
        """Persist one delivery (ConfigError for a bad target) and return its id; nothing is sent
        here, so the caller never waits on a mail server or a webhook."""
        parsed = parse_target(target)
        delivery_id = uuid.uuid4().hex
        now = self._now()
        with self._database.transaction() as db:
            db.execute(
                "INSERT INTO deliveries (id, source, target, target_redacted, subject, message,"
                " status, created_at, next_attempt) VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?)",
                (
                    delivery_id,
                    source,
                    parsed.spec,
                    parsed.redacted(),
                    message.subject,
                    json.dumps(message.to_json()),
                    now,
                    now,
                ),
            )
            db.executemany(
                "INSERT INTO attachments (delivery_id, position, filename, content_type, data)"
                " VALUES (?, ?, ?, ?, ?)",
                [
                    (delivery_id, i, a.filename, a.content_type, a.data)
                    for i, a in enumerate(message.attachments)
                ],
            )
        log.info("queued delivery %s (%s) to %s", delivery_id, source, parsed.redacted())
        return delivery_id

    def deliver_due(self, limit: int = 50, budget_s: float | None = None) -> int:
        """Send up to `limit` due deliveries this process wins; return how many were sent.
        With `budget_s`, stop starting new sends after that many (real) seconds, so a receiver
        that times out cannot hold a shared loop for long."""
        started = time.monotonic()
        now = self._now()
        candidates = [
            row[0]
            for row in self._db().execute(
                "SELECT id FROM deliveries WHERE status IN ('queued', 'retrying')"
                " AND next_attempt <= ? AND (lease_until IS NULL OR lease_until < ?)"
                " ORDER BY next_attempt LIMIT ?",
                (now, now, limit),
            )
        ]
        sent = 0
        for position, delivery_id in enumerate(candidates):
            if position and budget_s is not None and time.monotonic() - started > budget_s:
                break
            if self._claim(delivery_id) and self._attempt(delivery_id):
                sent += 1
        return sent

    def _claim(self, delivery_id: str) -> bool:
        now = self._now()
        cursor = self._db().execute(
            "UPDATE deliveries SET lease_owner = ?, lease_until = ?, attempts = attempts + 1"
            " WHERE id = ? AND status IN ('queued', 'retrying') AND next_attempt <= ?"
            " AND (lease_until IS NULL OR lease_until < ?)",
            (self._owner, now + LEASE_SECONDS, delivery_id, now, now),
        )
        return cursor.rowcount == 1

    def _attempt(self, delivery_id: str) -> bool:
        db = self._db()
        row = db.execute(
            "SELECT target, target_redacted, message, attempts FROM deliveries WHERE id = ?",
            (delivery_id,),
        ).fetchone()
        target_spec, shown, message_json, attempts = row
        attachments = [
            Attachment(name, content_type, bytes(data))
            for name, content_type, data in db.execute(
                "SELECT filename, content_type, data FROM attachments WHERE delivery_id = ?"
                " ORDER BY position",
                (delivery_id,),
            )
        ]
        message = Message.from_json(json.loads(message_json), attachments)
        try:
            target = parse_target(target_spec, warn=False)
            send(target, message, self.settings, self._clock(), delivery_id)
        except SendError as exc:
            self._record_failure(delivery_id, shown, attempts, str(exc), exc.permanent)
            return False
        except Exception as exc:  # a bug or bad data must not stop the other deliveries
            log.exception("delivery %s to %s failed unexpectedly", delivery_id, shown)
            error = f"{type(exc).__name__}: {exc}"
            self._record_failure(delivery_id, shown, attempts, error, is_permanent(exc))
            return False
        with self._database.transaction() as db:
            db.execute(
                "UPDATE deliveries SET status = 'sent', sent_at = ?, last_error = NULL,"
                " lease_owner = NULL, lease_until = NULL WHERE id = ?",
                (self._now(), delivery_id),
            )
            db.execute("DELETE FROM attachments WHERE delivery_id = ?", (delivery_id,))
        log.info("sent delivery %s to %s (attempt %d)", delivery_id, shown, attempts)
        return True

    def _record_failure(
        self, delivery_id: str, shown: str, attempts: int, error: str, permanent: bool = False
    ) -> None:
        max_attempts = max(1, self.settings.delivery_max_attempts)
        if permanent or attempts >= max_attempts:
            status, next_attempt = "failed", self._now()
            log.warning("delivery %s to %s failed for good: %s", delivery_id, shown, error)
        else:
            delay = self.settings.delivery_retry_delay * 2 ** (attempts - 1)
            status, next_attempt = "retrying", self._now() + delay
            log.info("delivery %s to %s: %s; retry in %.0f s", delivery_id, shown, error, delay)
        self._db().execute(
            "UPDATE deliveries SET status = ?, next_attempt = ?, last_error = ?,"
            " lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?",
            (status, next_attempt, error[:2000], delivery_id, self._owner),
        )

    def retry(self, delivery_id: str) -> Delivery:
        """Queue a failed (or waiting) delivery again now, with a fresh set of attempts."""
        cursor = self._db().execute(
            "UPDATE deliveries SET status = 'queued', attempts = 0, next_attempt = ?"
            " WHERE id = ? AND status IN ('failed', 'retrying', 'queued')",
            (self._now(), delivery_id),
        )
        found = self.get(delivery_id)
        if found is None:
            raise DeliveryError(f"no delivery with id {delivery_id!r}")
        if cursor.rowcount == 0:
            raise DeliveryError(f"delivery {delivery_id} was already sent")
        return found

    def get(self, delivery_id: str) -> Delivery | None:
        row = self._db().execute(_SELECT + " WHERE id = ?", (delivery_id,)).fetchone()
        return _delivery(row) if row else None

    def history(self, source: str | None = None, limit: int = 100) -> list[Delivery]:
        """Newest first; `source` matches exactly or as a prefix ending in `:` (`report:`)."""
        if source is None:
            rows = self._db().execute(
                _SELECT + " ORDER BY created_at DESC, rowid DESC LIMIT ?", (limit,)
            )
        else:
            rows = self._db().execute(
                _SELECT + " WHERE source = ?"
                " OR (substr(?, -1) = ':' AND substr(source, 1, length(?)) = ?)"
                " ORDER BY created_at DESC, rowid DESC LIMIT ?",
                (source, source, source, source, limit),
            )
        return [_delivery(row) for row in rows]

    def counts(self) -> dict[str, int]:
        rows = self._db().execute("SELECT status, COUNT(*) FROM deliveries GROUP BY status")
        return {status: 0 for status in STATUSES} | dict(rows.fetchall())

    def close(self) -> None:
        self._database.close()


_SELECT = (
    "SELECT id, source, target_redacted, subject, status, attempts, last_error, created_at,"
    " sent_at, next_attempt FROM deliveries"
)


def _delivery(row: tuple[Any, ...]) -> Delivery:
    (id_, source, target, subject, status, attempts, error, created, sent, next_attempt) = row
    return Delivery(
        id=id_,
        source=source,
        target=target,
        subject=subject,
        status=status,
        attempts=attempts,
        last_error=error,
        created_at=iso_from_seconds(created) or "",
        sent_at=iso_from_seconds(sent),
        next_attempt=iso_from_seconds(next_attempt) if status in ("queued", "retrying") else None,
    )
