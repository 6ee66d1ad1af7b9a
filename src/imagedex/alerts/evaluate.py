"""Per-image rules, evaluated on each batch of freshly indexed documents inside the worker.

The hook must cost nothing when no rule exists and must never raise into the worker: the
index write has already succeeded, and an alert problem is logged, never an ingestion failure.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from imagedex.alerts.deliver import send_alert
from imagedex.alerts.matching import Match, match_image
from imagedex.alerts.messages import image_alert
from imagedex.alerts.model import Rule
from imagedex.alerts.store import AlertStore, iso
from imagedex.clock import utc_now
from imagedex.config import Settings
from imagedex.documents import ImageDocument

__all__ = ["ImageRuleHook", "Match", "match_image"]

log = logging.getLogger("imagedex.alerts")

Clock = Callable[[], datetime]


class ImageRuleHook:
    """`hook(documents)`: evaluate every enabled, unmuted per-image rule on each document."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or utc_now
        self._store: AlertStore | None = None
        self._outbox: Any = None
        self._rules: list[Rule] = []
        self._version = -1
        self._lock = threading.Lock()

    def __call__(self, documents: Sequence[ImageDocument]) -> None:
        try:
            rules = self._current_rules()
            if rules and documents:
                self._evaluate(rules, documents)
        except Exception:
            log.exception("alert rules could not be evaluated on %d documents", len(documents))

    def _current_rules(self) -> list[Rule]:
        """The per-image rules, reloaded only when the store's version changes."""
        with self._lock:
            if self._store is None:
                data_dir = self.settings.data_dir
                if not AlertStore.exists(data_dir):
                    return []  # no rule was ever created: one stat() per batch
                self._store = AlertStore.open(data_dir)
            version = self._store.version()
            if version != self._version:
                self._rules = [r for r in self._store.rules() if r.per_image and r.enabled]
                self._version = version
            return self._rules

    def _evaluate(self, rules: Sequence[Rule], documents: Sequence[ImageDocument]) -> None:
        now = self.clock()
        now_text = iso(now)
        live = [r for r in rules if not r.muted_at(now_text)]
        for doc in documents:
            for rule in live:
                try:
                    match = match_image(rule, doc)
                    if match is not None:
                        self._fire(rule, doc, match, now)
                except Exception:
                    log.exception("alert rule %s failed on %s", rule.name, doc.key)

    def _fire(self, rule: Rule, doc: ImageDocument, match: Match, now: datetime) -> None:
        store = self._store
        assert store is not None
        if not store.first_sighting(rule.name, doc.id, doc.etag, now):
            return  # this version of the image already alerted (a reprocess or redelivery)
        suppressed = store.admit(rule.name, rule.throttle, now)
        if suppressed is None:
            return  # throttled: counted, reported with the next notification
        fields = image_alert(self.settings, rule, doc, match, suppressed)
        send_alert(
            self._outbox_(), store, rule, fields, now, doc_ids=[doc.id], suppressed=suppressed
        )

    def _outbox_(self) -> Any:
        if self._outbox is None:
            from imagedex.notify import Outbox

            self._outbox = Outbox.open(self.settings, clock=self.clock)
        return self._outbox
