"""One build at a time of an in-memory copy of an index file, in a background thread that
`close()` can stop (sqlite_columns.ColumnCache, sqlite_text.TextCache)."""

from __future__ import annotations

import sqlite3
import threading

from imagedex.db import Database


class BackgroundBuild:
    """`build()` (the subclass's) runs in a daemon thread on `start_build()`, never two at once.
    While a build reads, it keeps its connection in `_build_db` (under `_lock`) so that `close()`
    can interrupt the query and wait for the thread: the index's connections close next, and a
    connection must not close under a running query."""

    #: what a background build swallows: the SQL path answers meanwhile, a later request retries
    quiet_errors: tuple[type[Exception], ...] = (sqlite3.Error,)

    def __init__(self, database: Database) -> None:
        self._database = database
        self._lock = threading.Lock()
        self._building: threading.Thread | None = None
        self._build_db: sqlite3.Connection | None = None  # a build's connection, while it reads
        self._closing = False

    def build(self) -> None:
        raise NotImplementedError

    def _is_closing(self) -> bool:
        return self._closing

    def start_build(self) -> None:
        """Build in a background thread unless one is running (or the index is closing)."""
        with self._lock:
            if self._closing or (self._building is not None and self._building.is_alive()):
                return
            self._building = threading.Thread(target=self._build_quietly, daemon=True)
            self._building.start()

    def _build_quietly(self) -> None:
        try:
            self.build()
        except self.quiet_errors:
            pass
        finally:
            self._database.release()  # this thread's connection

    def wait(self, timeout: float | None = None) -> None:
        thread = self._building
        if thread is not None:
            thread.join(timeout)

    def close(self, timeout: float = 60.0) -> None:
        """Stop a build (its query interrupted) and wait for its thread."""
        with self._lock:
            self._closing = True
            db, thread = self._build_db, self._building
        if db is not None:
            db.interrupt()
        if thread is not None:
            thread.join(timeout)
