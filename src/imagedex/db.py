"""The one way imagedex opens SQLite files: pragmas, per-thread connections, transactions and
schema migrations for every store (index, queue, scheduler, alerts, outbox, access, reports).

- Each thread gets its own connection (in autocommit mode: transactions are explicit), opened on
  first use with the store's pragmas. `close()` closes every thread's connection, from any thread;
  a thread that uses the store afterwards opens a fresh one. A thread that ends drops its
  connection with its thread-local state, as before.
- `transaction()` is `BEGIN IMMEDIATE` ... `COMMIT` (or `ROLLBACK` on any exception): writers take
  the write lock up front, so two of them serialise instead of failing to upgrade a read lock.
- A store declares its schema as an ordered list of migration steps (SQL scripts or callables);
  `PRAGMA user_version` counts the steps a file has had. Opening runs the missing ones in one
  transaction. Files made before this module have user_version 0 but may already hold the tables:
  every step must tolerate the state such a file can be in (`CREATE TABLE IF NOT EXISTS`,
  `add_column`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import weakref
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

Migration = str | Callable[[sqlite3.Connection], None]


class _Slot:
    """One thread's connection. Held strongly only by its thread's local state, so it (and the
    connection) goes away when the thread ends; the store tracks slots weakly."""

    __slots__ = ("__weakref__", "db")

    def __init__(self) -> None:
        self.db: sqlite3.Connection | None = None


class Database:
    def __init__(
        self,
        path: Path | str,
        migrations: Sequence[Migration] = (),
        *,
        timeout: float = 30.0,
        synchronous: str = "NORMAL",
        foreign_keys: bool = False,
        pragmas: Mapping[str, str | int] | None = None,
    ) -> None:
        """Open (creating it and its folder if needed) and migrate the file at `path`.

        `timeout`: seconds a statement waits for another connection's lock (busy timeout);
        `pragmas`: further per-connection settings, e.g. {"cache_size": -65536}.
        """
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._timeout = timeout
        self._pragmas: dict[str, str | int] = {"journal_mode": "WAL", "synchronous": synchronous}
        if foreign_keys:
            self._pragmas["foreign_keys"] = "ON"
        self._pragmas.update(pragmas or {})
        self._local = threading.local()
        self._slots: weakref.WeakSet[_Slot] = weakref.WeakSet()
        self._slots_lock = threading.Lock()
        self.migrate(migrations)

    # -- connections ----------------------------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use (or first use after `close()`)."""
        slot: _Slot | None = getattr(self._local, "slot", None)
        if slot is None:
            slot = _Slot()
            with self._slots_lock:
                self._slots.add(slot)
            self._local.slot = slot
        db = slot.db
        if db is None:
            db = slot.db = self._connect()
        return db

    def _connect(self) -> sqlite3.Connection:
        # check_same_thread=False only so that close() may close it from another thread; each
        # connection is otherwise used by the thread that opened it
        db = sqlite3.connect(
            self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        try:
            for name, value in self._pragmas.items():
                db.execute(f"PRAGMA {name} = {value}")
        except BaseException:
            db.close()
            raise
        return db

    def release(self) -> None:
        """Close the calling thread's connection only (a helper thread that is done)."""
        slot: _Slot | None = getattr(self._local, "slot", None)
        if slot is not None and slot.db is not None:
            db, slot.db = slot.db, None
            db.close()

    def close(self) -> None:
        """Close every thread's connection."""
        with self._slots_lock:
            slots = list(self._slots)
        for slot in slots:
            db, slot.db = slot.db, None
            if db is not None:
                db.close()

    # -- transactions ---------------------------------------------------------------------------

    @contextmanager
    def transaction(self, immediate: bool = True) -> Iterator[sqlite3.Connection]:
        """`BEGIN IMMEDIATE` (or, with immediate=False, a deferred `BEGIN`: a read snapshot that
        takes no write lock), then `COMMIT`, or `ROLLBACK` when the block raises."""
        db = self.connection()
        db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # some errors (disk full, I/O) have rolled back already
                db.execute("ROLLBACK")
            raise

    # -- migrations -----------------------------------------------------------------------------

    def user_version(self) -> int:
        return int(self.connection().execute("PRAGMA user_version").fetchone()[0])

    def migrate(self, migrations: Sequence[Migration]) -> None:
        """Run the steps past the file's user_version, then set it to len(migrations).

        A file with a higher user_version (written by a newer imagedex) is left as it is."""
        if self.user_version() >= len(migrations):
            return  # the usual case: nothing to do, and no write lock taken
        with self.transaction() as db:
            done = self.user_version()  # another process may have migrated meanwhile
            for step in migrations[done:]:
                if isinstance(step, str):
                    for statement in _statements(step):
                        db.execute(statement)
                else:
                    step(db)
            if done < len(migrations):
                db.execute(f"PRAGMA user_version = {len(migrations):d}")


def _statements(script: str) -> Iterator[str]:
    """The statements of an SQL script, one at a time (executescript would commit first)."""
    pieces = script.split(";")
    buffer = ""
    for i, piece in enumerate(pieces):
        buffer += piece if i == len(pieces) - 1 else piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \t\r\n;"):
                yield buffer.strip()
            buffer = ""
    if buffer.strip():
        yield buffer.strip()  # no trailing `;`: SQLite still reports any error in it


def add_column(db: sqlite3.Connection, table: str, definition: str) -> bool:
    """`ALTER TABLE table ADD COLUMN definition` unless the column exists; whether it was added."""
    column = definition.split()[0]
    if column in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}:
        return False
    db.execute(f"ALTER TABLE {table} ADD COLUMN {definition}")
    return True


def newest_rows(
    db: sqlite3.Connection,
    table: str,
    columns: Sequence[str],
    *,
    where: tuple[str, object] | None = None,
    limit: int,
    json_columns: Collection[str] = (),
) -> list[dict[str, Any]]:
    """Rows of a history table, newest (highest `id`) first, as {column: value} with the
    `json_columns` decoded; `where` is (column, value) for an equality filter. Table and column
    names come from code, never from users; the values are bound."""
    sql = f"SELECT {', '.join(columns)} FROM {table}"
    args: tuple[object, ...] = (limit,)
    if where is not None:
        sql += f" WHERE {where[0]} = ?"
        args = (where[1], limit)
    rows = db.execute(sql + " ORDER BY id DESC LIMIT ?", args).fetchall()
    return [
        {
            name: json.loads(value) if name in json_columns else value
            for name, value in zip(columns, row, strict=True)
        }
        for row in rows
    ]
