"""Uploads made safe to retry: the answer to a request with an `Idempotency-Key` header is kept,
so the same request sent again (after a lost response, a timeout, a dropped connection) gets the
same answer instead of storing a second copy.

- Keys belong to a caller (API key, user, or the local client with auth off) and are kept for
  `KEEP_FOR` seconds (a day): a retry comes within minutes, and the file stays small.
- The same key with other content (other bytes, file name or title) is refused with 422: the
  client has a bug, and guessing which request it meant would lose one of them.
- A key whose first request is still being handled gets 409 with Retry-After; one whose request
  never finished (the server died) is free again after `PENDING_FOR` seconds.
- The object key is derived from the caller and the idempotency key, so even a request retried
  after a crash between storing and answering writes the same object, never a second one.

State lives in `idempotency.sqlite3` in the data dir (so `imagedex backup` keeps it).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import HTTPException

from imagedex.db import Database

HEADER = "Idempotency-Key"
FILE_NAME = "idempotency.sqlite3"
KEEP_FOR = 24 * 3600.0
PENDING_FOR = 300.0
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, as in the IETF draft's examples

_SCHEMA = [
    """
    CREATE TABLE IF NOT EXISTS requests (
        caller TEXT NOT NULL,
        key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        started REAL NOT NULL,
        answer TEXT,  -- NULL while the first request is being handled
        PRIMARY KEY (caller, key)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS requests_started ON requests (started);
    """
]


def check_key(key: str) -> str:
    if not _VALID_KEY.match(key):
        raise HTTPException(
            400, f"the {HEADER} header must be 1 to 255 printable ASCII characters (use a UUID)"
        )
    return key


def fingerprint(data: bytes, file_name: str, title: str) -> str:
    """What makes two requests the same request."""
    digest = hashlib.sha256()
    for part in (hashlib.sha256(data).digest(), file_name.encode(), title.encode()):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def object_prefix(caller: str, key: str) -> str:
    """Stands in for the random part of an upload's object key."""
    return hashlib.sha256(f"{caller}\0{key}".encode()).hexdigest()[:12]


class IdempotencyStore:
    def __init__(self, data_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.db = Database(Path(data_dir) / FILE_NAME, _SCHEMA)
        self.clock = clock

    def begin(self, caller: str, key: str, request_print: str) -> dict[str, Any] | None:
        """None: go ahead (the key is now taken); a dict: the answer already given to this
        request; HTTPException 409 (still in progress) or 422 (the key was used for another)."""
        now = self.clock()
        with self.db.transaction() as db:
            db.execute("DELETE FROM requests WHERE started < ?", (now - KEEP_FOR,))
            row = db.execute(
                "SELECT fingerprint, started, answer FROM requests WHERE caller = ? AND key = ?",
                (caller, key),
            ).fetchone()
            abandoned = row is not None and row[2] is None and row[1] < now - PENDING_FOR
            if row is None or abandoned:
                db.execute(
                    "INSERT OR REPLACE INTO requests (caller, key, fingerprint, started, answer) "
                    "VALUES (?, ?, ?, ?, NULL)",
                    (caller, key, request_print, now),
                )
                return None
        if row[0] != request_print:
            raise HTTPException(
                422,
                f"this {HEADER} was already used for another upload (other bytes, file name or "
                "title): use a new key for each new upload",
            )
        if row[2] is None:
            raise HTTPException(
                409,
                f"the first request with this {HEADER} is still being handled; retry shortly",
                headers={"Retry-After": "2"},
            )
        answer: dict[str, Any] = json.loads(row[2])
        return answer

    def finish(self, caller: str, key: str, answer: dict[str, Any]) -> None:
        with self.db.transaction() as db:
            db.execute(
                "UPDATE requests SET answer = ? WHERE caller = ? AND key = ?",
                (json.dumps(answer), caller, key),
            )

    def abandon(self, caller: str, key: str) -> None:
        """The request failed before storing anything: a retry is handled afresh."""
        with self.db.transaction() as db:
            db.execute("DELETE FROM requests WHERE caller = ? AND key = ?", (caller, key))

    def close(self) -> None:
        self.db.close()
