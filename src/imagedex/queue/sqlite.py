"""A durable work queue in one SQLite file (WAL), safe across processes, with SQS semantics."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from imagedex.db import Database
from imagedex.queue.base import DeadLetter, Message, QueueStats

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    sent_at REAL NOT NULL,
    visible_at REAL NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS messages_visible ON messages (visible_at);
CREATE UNIQUE INDEX IF NOT EXISTS messages_receipt ON messages (receipt);
CREATE TABLE IF NOT EXISTS dead_letters (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    error TEXT NOT NULL,
    receive_count INTEGER NOT NULL,
    failed_at REAL NOT NULL
);
"""


class SqliteQueue:
    """Messages live in `messages` until deleted; receiving hides them until `visible_at`.

    A worker that dies simply never deletes: the message becomes visible again when its
    visibility timeout ends, with its receive count showing how many attempts were made.
    """

    def __init__(
        self,
        path: Path,
        max_receive_count: int = 3,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.max_receive_count = max_receive_count
        self._clock = clock
        self._database = Database(self.path, [_SCHEMA])

    def _db(self) -> sqlite3.Connection:
        return self._database.connection()

    def send(self, body: str, delay: float = 0.0) -> str:
        message_id = str(uuid.uuid4())
        now = self._clock()
        with self._database.transaction() as db:
            db.execute(
                "INSERT INTO messages (id, body, sent_at, visible_at) VALUES (?, ?, ?, ?)",
                (message_id, body, now, now + delay),
            )
        return message_id

    def receive(
        self, max_messages: int = 10, visibility_timeout: float = 60.0, wait_seconds: float = 0.0
    ) -> list[Message]:
        deadline = time.monotonic() + wait_seconds
        while True:
            messages = self._receive_once(max_messages, visibility_timeout)
            if messages or time.monotonic() >= deadline:
                return messages
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def _receive_once(self, max_messages: int, visibility_timeout: float) -> list[Message]:
        now = self._clock()
        with self._database.transaction() as db:
            rows = db.execute(
                "SELECT id, body, sent_at, receive_count, last_error FROM messages"
                " WHERE visible_at <= ? ORDER BY visible_at, sent_at LIMIT ?",
                (now, max_messages * 2),
            ).fetchall()
            received: list[Message] = []
            for message_id, body, sent_at, count, last_error in rows:
                if count >= self.max_receive_count:
                    reason = last_error or (
                        f"not deleted after {count} receives (the worker stopped or timed out)"
                    )
                    self._move_to_dead(db, message_id, body, reason, count, now)
                    continue
                if len(received) == max_messages:
                    break
                receipt = uuid.uuid4().hex
                db.execute(
                    "UPDATE messages SET visible_at = ?, receive_count = receive_count + 1,"
                    " receipt = ? WHERE id = ?",
                    (now + visibility_timeout, receipt, message_id),
                )
                received.append(Message(message_id, body, receipt, count + 1, sent_at))
            return received

    @staticmethod
    def _move_to_dead(
        db: sqlite3.Connection, message_id: str, body: str, error: str, count: int, now: float
    ) -> None:
        db.execute(
            "INSERT OR REPLACE INTO dead_letters (id, body, error, receive_count, failed_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (message_id, body, error, count, now),
        )
        db.execute("DELETE FROM messages WHERE id = ?", (message_id,))

    def delete(self, receipts: Sequence[str]) -> None:
        with self._database.transaction() as db:
            db.executemany("DELETE FROM messages WHERE receipt = ?", [(r,) for r in receipts])

    def extend(self, receipt: str, visibility_timeout: float) -> None:
        with self._database.transaction() as db:
            db.execute(
                "UPDATE messages SET visible_at = ? WHERE receipt = ?",
                (self._clock() + visibility_timeout, receipt),
            )

    def release(self, receipt: str, error: str, delay: float = 0.0) -> None:
        now = self._clock()
        with self._database.transaction() as db:
            row = db.execute(
                "SELECT id, body, receive_count FROM messages WHERE receipt = ?", (receipt,)
            ).fetchone()
            if row is None:
                return  # receipt expired: another worker owns the message now
            message_id, body, count = row
            if count >= self.max_receive_count:
                self._move_to_dead(db, message_id, body, error, count, now)
            else:
                db.execute(
                    "UPDATE messages SET visible_at = ?, last_error = ?, receipt = NULL"
                    " WHERE id = ?",
                    (now + delay, error, message_id),
                )

    def dead_letter(self, receipt: str, error: str) -> None:
        with self._database.transaction() as db:
            row = db.execute(
                "SELECT id, body, receive_count FROM messages WHERE receipt = ?", (receipt,)
            ).fetchone()
            if row is not None:
                self._move_to_dead(db, row[0], row[1], error, row[2], self._clock())

    def stats(self) -> QueueStats:
        now = self._clock()
        db = self._db()
        visible, in_flight = db.execute(
            "SELECT COALESCE(SUM(visible_at <= ?), 0), COALESCE(SUM(visible_at > ?), 0)"
            " FROM messages",
            (now, now),
        ).fetchone()
        dead = db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0]
        return QueueStats(visible=int(visible), in_flight=int(in_flight), dead=int(dead))

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        rows = self._db().execute(
            "SELECT id, body, error, receive_count, failed_at FROM dead_letters"
            " ORDER BY failed_at DESC LIMIT ?",
            (limit,),
        )
        return [DeadLetter(*row) for row in rows]

    def redrive(self, ids: Sequence[str] | None = None) -> int:
        now = self._clock()
        with self._database.transaction() as db:
            if ids is None:
                rows = db.execute("SELECT id, body FROM dead_letters").fetchall()
            else:
                rows = []
                for message_id in ids:
                    rows += db.execute(
                        "SELECT id, body FROM dead_letters WHERE id = ?", (message_id,)
                    ).fetchall()
            for message_id, body in rows:
                db.execute(
                    "INSERT OR REPLACE INTO messages (id, body, sent_at, visible_at)"
                    " VALUES (?, ?, ?, ?)",
                    (message_id, body, now, now),
                )
                db.execute("DELETE FROM dead_letters WHERE id = ?", (message_id,))
            return len(rows)

    def purge(self, ids: Sequence[str] | None = None) -> int:
        with self._database.transaction() as db:
            if ids is None:
                return int(db.execute("DELETE FROM dead_letters").rowcount)
            return sum(
                int(db.execute("DELETE FROM dead_letters WHERE id = ?", (i,)).rowcount)
                for i in set(ids)
            )

    def close(self) -> None:
        self._database.close()
