"""Rules, throttle state, seen documents and alert history in `data_dir/alerts.sqlite3`.

Every decision that two processes could race on (was this document already alerted for this
rule? may this rule notify now or is it throttled?) is one SQLite write transaction, so two
workers never both send the same alert.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

from imagedex.alerts.model import AlertRecord, Rule
from imagedex.db import Database, newest_rows
from imagedex.errors import ConfigError

FILE_NAME = "alerts.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rules (
    name TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('rules_version', 0);
CREATE TABLE IF NOT EXISTS seen (
    rule TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    etag TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (rule, doc_id, etag)
);
CREATE TABLE IF NOT EXISTS state (
    rule TEXT PRIMARY KEY,
    last_sent_at TEXT,
    suppressed INTEGER NOT NULL DEFAULT 0,
    firing INTEGER NOT NULL DEFAULT 0,
    last_value REAL,
    checked_at TEXT
);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rule TEXT NOT NULL,
    kind TEXT NOT NULL,
    fired_at TEXT NOT NULL,
    subject TEXT NOT NULL,
    doc_ids TEXT NOT NULL,
    value REAL,
    threshold REAL,
    suppressed INTEGER NOT NULL,
    delivery_ids TEXT NOT NULL,
    status TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_rule ON history (rule, id);
"""


def iso(moment: datetime) -> str:
    """UTC, millisecond precision, `Z`: sorts as text in time order."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@dataclass(frozen=True)
class RuleState:
    last_sent_at: str | None
    suppressed: int
    firing: bool
    last_value: float | None
    checked_at: str | None


class AlertStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._database = Database(self.path, [_SCHEMA])

    @classmethod
    def open(cls, data_dir: Path) -> AlertStore:
        return cls(Path(data_dir) / FILE_NAME)

    @staticmethod
    def exists(data_dir: Path) -> bool:
        return (Path(data_dir) / FILE_NAME).exists()

    def _db(self) -> sqlite3.Connection:
        return self._database.connection()

    def close(self) -> None:
        self._database.close()

    # -- rules ------------------------------------------------------------------------------------

    def version(self) -> int:
        """Grows whenever a rule is added, changed, muted or removed (cache key for the hook)."""
        row = self._db().execute("SELECT value FROM meta WHERE key = 'rules_version'").fetchone()
        return int(row[0])

    def put(self, rule: Rule, replace: bool = False, keep_state: bool = False) -> Rule:
        """Add (or with `replace`, change) a rule. A changed rule starts over (not firing,
        nothing suppressed) unless `keep_state`, as muting and unmuting do."""
        with self._database.transaction() as db:
            exists = db.execute("SELECT 1 FROM rules WHERE name = ?", (rule.name,)).fetchone()
            if exists and not replace:
                raise ConfigError(f"an alert rule named {rule.name!r} already exists")
            if not exists and replace:
                raise ConfigError(f"no alert rule named {rule.name!r}")
            db.execute(
                "INSERT OR REPLACE INTO rules (name, data) VALUES (?, ?)",
                (rule.name, json.dumps(rule.to_dict())),
            )
            if replace and not keep_state:
                db.execute("DELETE FROM state WHERE rule = ?", (rule.name,))
            self._bump(db)
        return rule

    def get(self, name: str) -> Rule:
        row = self._db().execute("SELECT data FROM rules WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise ConfigError(f"no alert rule named {name!r}")
        return Rule.from_dict(json.loads(row[0]))

    def rules(self) -> list[Rule]:
        rows = self._db().execute("SELECT data FROM rules ORDER BY name").fetchall()
        return [Rule.from_dict(json.loads(row[0])) for row in rows]

    def delete(self, name: str) -> None:
        with self._database.transaction() as db:
            if db.execute("DELETE FROM rules WHERE name = ?", (name,)).rowcount == 0:
                raise ConfigError(f"no alert rule named {name!r}")
            db.execute("DELETE FROM seen WHERE rule = ?", (name,))
            db.execute("DELETE FROM state WHERE rule = ?", (name,))
            self._bump(db)

    @staticmethod
    def _bump(db: sqlite3.Connection) -> None:
        db.execute("UPDATE meta SET value = value + 1 WHERE key = 'rules_version'")

    # -- per-image dedup and throttling -------------------------------------------------------

    def first_sighting(self, rule: str, doc_id: str, etag: str, now: datetime) -> bool:
        """True once per (rule, document version): a reprocessed image never alerts twice."""
        with self._database.transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO seen (rule, doc_id, etag, seen_at) VALUES (?, ?, ?, ?)",
                (rule, doc_id, etag, iso(now)),
            )
            return cursor.rowcount == 1

    def admit(self, rule: str, throttle: float, now: datetime) -> int | None:
        """May `rule` notify at `now`? Yes: the number of matches suppressed since its last
        notification (then reset). No (inside the throttle period): None, and one more
        suppressed match is counted."""
        with self._database.transaction() as db:
            row = db.execute(
                "SELECT last_sent_at, suppressed FROM state WHERE rule = ?", (rule,)
            ).fetchone()
            last_sent, suppressed = (row[0], int(row[1])) if row else (None, 0)
            if last_sent is not None and now < parse_iso(last_sent) + timedelta(seconds=throttle):
                db.execute(
                    "INSERT INTO state (rule, suppressed) VALUES (?, 1) ON CONFLICT (rule) "
                    "DO UPDATE SET suppressed = suppressed + 1",
                    (rule,),
                )
                return None
            db.execute(
                "INSERT INTO state (rule, last_sent_at, suppressed) VALUES (?, ?, 0) "
                "ON CONFLICT (rule) DO UPDATE SET last_sent_at = excluded.last_sent_at, "
                "suppressed = 0",
                (rule, iso(now)),
            )
            return suppressed

    # -- aggregate rules ------------------------------------------------------------------------

    def set_firing(self, rule: str, firing: bool, value: float, now: datetime) -> bool:
        """Record the latest evaluation; returns whether the rule was firing before it."""
        with self._database.transaction() as db:
            row = db.execute("SELECT firing FROM state WHERE rule = ?", (rule,)).fetchone()
            db.execute(
                "INSERT INTO state (rule, firing, last_value, checked_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (rule) DO UPDATE SET firing = excluded.firing, "
                "last_value = excluded.last_value, checked_at = excluded.checked_at",
                (rule, int(firing), value, iso(now)),
            )
            return bool(row and row[0])

    def state(self, rule: str) -> RuleState:
        row = (
            self._db()
            .execute(
                "SELECT last_sent_at, suppressed, firing, last_value, checked_at FROM state "
                "WHERE rule = ?",
                (rule,),
            )
            .fetchone()
        )
        if row is None:
            return RuleState(None, 0, False, None, None)
        return RuleState(row[0], int(row[1]), bool(row[2]), row[3], row[4])

    # -- history --------------------------------------------------------------------------------

    def record(self, alert: AlertRecord) -> AlertRecord:
        with self._database.transaction() as db:
            cursor = db.execute(
                "INSERT INTO history (rule, kind, fired_at, subject, doc_ids, value, threshold, "
                "suppressed, delivery_ids, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    alert.rule,
                    alert.kind,
                    alert.fired_at,
                    alert.subject,
                    json.dumps(alert.doc_ids),
                    alert.value,
                    alert.threshold,
                    alert.suppressed,
                    json.dumps(alert.delivery_ids),
                    alert.status,
                ),
            )
            alert.id = int(cursor.lastrowid or 0)
        return alert

    def history(self, rule: str | None = None, limit: int = 100) -> list[AlertRecord]:
        rows = newest_rows(
            self._db(),
            "history",
            _HISTORY_COLUMNS,
            where=None if rule is None else ("rule", rule),
            limit=limit,
            json_columns=("doc_ids", "delivery_ids"),
        )
        return [AlertRecord(**row) for row in rows]


_HISTORY_COLUMNS = [f.name for f in fields(AlertRecord)]
