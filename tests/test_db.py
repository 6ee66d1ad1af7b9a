"""The SQLite helper every store uses: connections, transactions, migrations."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import run_concurrently
from imagedex.db import Database, add_column, newest_rows
from imagedex.documents import SearchQuery, document_id
from imagedex.index.sqlite import SqliteIndex
from imagedex.queue.sqlite import SqliteQueue
from test_index_sqlite import doc


def open_files(path: Path) -> int:
    """File descriptors of this process on the database file or its -wal/-shm companions."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(path)):
            count += 1
    return count


def in_threads(
    count: int, work: Callable[[], object]
) -> tuple[list[threading.Thread], threading.Event]:
    """Start `count` threads that each call `work()` and then wait (alive) until released."""
    ready = threading.Barrier(count + 1)
    release = threading.Event()

    def run() -> None:
        work()
        ready.wait()
        release.wait(30)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for t in threads:
        t.start()
    ready.wait(30)
    return threads, release


# -- connections --------------------------------------------------------------------------------


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_close_closes_the_connections_of_every_thread(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite3"
    database = Database(path, ["CREATE TABLE t (x INTEGER)"])
    database.close()
    connections: list[sqlite3.Connection] = []

    def insert() -> None:
        db = database.connection()
        db.execute("INSERT INTO t VALUES (1)")
        connections.append(db)

    threads, release = in_threads(4, insert)
    try:
        assert len({id(c) for c in connections}) == 4
        assert open_files(path) >= 4
        database.close()  # from the main thread, while the four are still alive
        assert open_files(path) == 0
    finally:
        release.set()
        for t in threads:
            t.join()
    # a store stays usable after close(): the next use opens a fresh connection
    assert database.connection().execute("SELECT COUNT(*) FROM t").fetchone() == (4,)
    database.close()
    assert open_files(path) == 0


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_a_store_used_from_four_threads_holds_no_file_after_close(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    queue = SqliteQueue(path)
    threads, release = in_threads(4, lambda: queue.send("hello"))
    try:
        queue.close()
        assert open_files(path) == 0
    finally:
        release.set()
        for t in threads:
            t.join()
    reopened = SqliteQueue(path)
    assert reopened.stats().visible == 4
    reopened.close()


def test_each_thread_has_its_own_connection_and_release_closes_only_its_own(
    tmp_path: Path,
) -> None:
    database = Database(tmp_path / "a.sqlite3")
    mine = database.connection()
    assert database.connection() is mine
    seen: list[sqlite3.Connection] = []

    def other() -> None:
        seen.append(database.connection())
        database.release()
        seen.append(database.connection())
        database.release()

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert seen[0] is not mine and seen[1] is not seen[0]
    assert mine.execute("SELECT 1").fetchone() == (1,)  # untouched by the other's release
    database.close()
    with pytest.raises(sqlite3.ProgrammingError):
        mine.execute("SELECT 1")


def test_pragmas_are_applied_to_every_connection(tmp_path: Path) -> None:
    database = Database(
        tmp_path / "a.sqlite3",
        timeout=10.0,
        synchronous="FULL",
        foreign_keys=True,
        pragmas={"temp_store": "MEMORY"},
    )
    found: list[tuple[object, ...]] = []

    def read() -> None:
        db = database.connection()
        found.append(
            tuple(
                db.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            )
        )

    read()
    thread = threading.Thread(target=read)
    thread.start()
    thread.join()
    assert found == [("wal", 2, 1, 10000)] * 2
    database.close()
    defaults = Database(tmp_path / "b.sqlite3")
    db = defaults.connection()
    assert db.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    assert db.execute("PRAGMA foreign_keys").fetchone() == (0,)
    assert db.execute("PRAGMA busy_timeout").fetchone() == (30000,)
    defaults.close()


def test_a_file_that_is_no_database_fails_to_open_and_leaves_nothing_open(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(sqlite3.DatabaseError):
        Database(path, ["CREATE TABLE t (x)"])
    if Path("/proc/self/fd").is_dir():
        assert open_files(path) == 0


# -- transactions -------------------------------------------------------------------------------


def test_transaction_commits_or_rolls_back(tmp_path: Path) -> None:
    database = Database(tmp_path / "a.sqlite3", ["CREATE TABLE t (x INTEGER)"])
    with database.transaction() as db:
        db.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(RuntimeError), database.transaction() as db:
        db.execute("INSERT INTO t VALUES (2)")
        raise RuntimeError("boom")
    db = database.connection()
    assert not db.in_transaction
    assert db.execute("SELECT x FROM t").fetchall() == [(1,)]
    # another connection sees the same
    other = sqlite3.connect(tmp_path / "a.sqlite3")
    assert other.execute("SELECT x FROM t").fetchall() == [(1,)]
    other.close()
    database.close()


def test_a_failed_statement_rolls_back_the_whole_transaction(tmp_path: Path) -> None:
    database = Database(tmp_path / "a.sqlite3", ["CREATE TABLE t (x INTEGER UNIQUE)"])
    with pytest.raises(sqlite3.IntegrityError), database.transaction() as db:
        db.execute("INSERT INTO t VALUES (1)")
        db.execute("INSERT INTO t VALUES (1)")
    assert database.connection().execute("SELECT COUNT(*) FROM t").fetchone() == (0,)
    database.close()


def test_concurrent_immediate_transactions_serialise(tmp_path: Path) -> None:
    database = Database(tmp_path / "a.sqlite3", ["CREATE TABLE t (x INTEGER)"])
    events: list[str] = []
    first_inside = threading.Event()

    def first() -> None:
        with database.transaction() as db:
            events.append("first in")
            first_inside.set()
            time.sleep(0.3)  # the second one must wait for this commit
            db.execute("INSERT INTO t VALUES (1)")
            events.append("first out")

    def second() -> None:
        first_inside.wait(10)
        with database.transaction() as db:
            events.append("second in")
            (count,) = db.execute("SELECT COUNT(*) FROM t").fetchone()
            db.execute("INSERT INTO t VALUES (?)", (count + 1,))
            events.append("second out")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert events == ["first in", "first out", "second in", "second out"]
    assert database.connection().execute("SELECT x FROM t ORDER BY x").fetchall() == [(1,), (2,)]
    database.close()


# -- migrations ---------------------------------------------------------------------------------


def test_migrations_run_once_in_order_and_bump_user_version(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite3"
    calls: list[int] = []

    def second(db: sqlite3.Connection) -> None:
        calls.append(2)
        db.execute("INSERT INTO t (x) VALUES ('from step 2')")

    steps = [
        "CREATE TABLE IF NOT EXISTS t (x TEXT);\n-- a comment; with a semicolon\n"
        "CREATE TABLE IF NOT EXISTS u (y TEXT DEFAULT 'a;b');",
        second,
    ]
    database = Database(path, steps)
    assert database.user_version() == 2 and calls == [2]
    database.close()
    database = Database(path, steps)  # nothing left to run
    assert calls == [2]
    database.close()

    def third(db: sqlite3.Connection) -> None:
        calls.append(3)
        assert add_column(db, "t", "z INTEGER NOT NULL DEFAULT 7")
        assert not add_column(db, "t", "z INTEGER NOT NULL DEFAULT 7")

    database = Database(path, [*steps, third])
    assert database.user_version() == 3 and calls == [2, 3]
    rows = database.connection().execute("SELECT x, z FROM t").fetchall()
    assert rows == [("from step 2", 7)]
    database.close()


def test_a_failing_migration_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite3"
    Database(path, ["CREATE TABLE t (x)"]).close()

    def broken(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO t VALUES (1)")
        raise RuntimeError("step failed")

    with pytest.raises(RuntimeError, match="step failed"):
        Database(path, ["CREATE TABLE t (x)", "CREATE TABLE u (y)", broken])
    database = Database(path, ["CREATE TABLE t (x)"])
    db = database.connection()
    assert database.user_version() == 1
    assert db.execute("SELECT COUNT(*) FROM t").fetchone() == (0,)
    assert db.execute("SELECT name FROM sqlite_master WHERE name = 'u'").fetchone() is None
    database.close()


def test_concurrent_openers_migrate_once(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite3"
    Database(path, ["CREATE TABLE runs (n INTEGER)"]).close()
    steps = [
        "CREATE TABLE runs (n INTEGER)",  # would fail if run twice
        "INSERT INTO runs VALUES (1)",
    ]
    _, errors = run_concurrently(lambda: Database(path, steps).close(), 4)
    assert errors == []
    database = Database(path, steps)
    assert database.connection().execute("SELECT COUNT(*) FROM runs").fetchone() == (1,)
    database.close()


def test_newest_rows_reads_a_history_table(tmp_path: Path) -> None:
    database = Database(
        tmp_path / "a.sqlite3",
        ["CREATE TABLE h (id INTEGER PRIMARY KEY, name TEXT, ids TEXT)"],
    )
    db = database.connection()
    for name, ids in (("a", "[1]"), ("b", "[]"), ("a", "[2, 3]")):
        db.execute("INSERT INTO h (name, ids) VALUES (?, ?)", (name, ids))
    columns = ["id", "name", "ids"]
    assert newest_rows(db, "h", columns, limit=2, json_columns=("ids",)) == [
        {"id": 3, "name": "a", "ids": [2, 3]},
        {"id": 2, "name": "b", "ids": []},
    ]
    assert [r["id"] for r in newest_rows(db, "h", columns, where=("name", "a"), limit=9)] == [3, 1]
    database.close()


# -- files made before user_version ------------------------------------------------------------

LOCAL = "2026-01-02T03:04:05+02:00"

# the queue's layout as the code before imagedex.db created it (user_version 0)
_OLD_QUEUE = """
CREATE TABLE messages (
    id TEXT PRIMARY KEY, body TEXT NOT NULL, sent_at REAL NOT NULL, visible_at REAL NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0, receipt TEXT, last_error TEXT
);
CREATE INDEX messages_visible ON messages (visible_at);
CREATE UNIQUE INDEX messages_receipt ON messages (receipt);
CREATE TABLE dead_letters (
    id TEXT PRIMARY KEY, body TEXT NOT NULL, error TEXT NOT NULL,
    receive_count INTEGER NOT NULL, failed_at REAL NOT NULL
);
INSERT INTO messages (id, body, sent_at, visible_at) VALUES ('m1', 'kept', 1.0, 1.0);
INSERT INTO dead_letters VALUES ('m0', 'dead', 'boom', 3, 1.0);
"""


def test_a_queue_file_from_before_user_version_opens_with_its_messages(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite3"
    raw = sqlite3.connect(path)
    raw.executescript("PRAGMA journal_mode=WAL;" + _OLD_QUEUE)
    raw.close()
    queue = SqliteQueue(path)
    assert [m.body for m in queue.receive()] == ["kept"]
    assert [d.body for d in queue.dead_letters()] == ["dead"]
    queue.close()
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone() == (1,)
    raw.close()


def test_an_index_from_before_user_version_opens_with_its_documents(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite3"
    index = SqliteIndex(path)
    index.upsert(
        [
            doc("cat.jpg", [("cat", 91.0, ())], ingested_at=LOCAL),
            doc("dog.jpg", [("dog", 45.0, ())]),
        ]
    )
    index.close()
    # the oldest layout the upgrade code knew: no unsafe or max_confidence column, local times
    raw = sqlite3.connect(path)
    raw.executescript(
        "DROP INDEX docs_unsafe; DROP INDEX docs_max_confidence;"
        " ALTER TABLE docs DROP COLUMN unsafe; ALTER TABLE docs DROP COLUMN max_confidence;"
        " UPDATE docs SET ingested_at = json_extract(body, '$.ingested_at');"
        " DELETE FROM meta WHERE key = 'ingested_at_utc'; PRAGMA user_version = 0;"
    )
    raw.close()
    index = SqliteIndex(path)
    assert index.count() == 2
    found = index.search(SearchQuery(labels=["cat"]))
    assert [d.key for d in found.documents] == ["cat.jpg"]
    assert [b.count for b in index.facets(SearchQuery()).confidence][4:10] == [1, 0, 0, 0, 0, 1]
    index.close()
    raw = sqlite3.connect(path)
    version = raw.execute("PRAGMA user_version").fetchone()[0]
    columns = {row[1] for row in raw.execute("PRAGMA table_info(docs)")}
    ingested = raw.execute("SELECT DISTINCT ingested_at FROM docs").fetchall()
    raw.close()
    assert version >= 1 and {"unsafe", "max_confidence"} <= columns
    assert sorted(ingested) == [("2026-01-01T00:00:00.000Z",), ("2026-01-02T01:04:05.000Z",)]


def test_an_index_made_by_the_current_layout_at_version_0_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite3"
    index = SqliteIndex(path)
    index.upsert([doc("cat.jpg", [("cat", 91.0, ())])])
    index.close()
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA user_version = 0")
    raw.close()
    index = SqliteIndex(path)
    assert [d.key for d in index.search(SearchQuery(text="cat")).documents] == ["cat.jpg"]
    assert index.get(document_id("b", "cat.jpg")) is not None
    index.close()
