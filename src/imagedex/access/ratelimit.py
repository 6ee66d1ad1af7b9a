"""In-process sliding-window rate limits, one window per (bucket, client) key."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

_SWEEP_EVERY = 1024  # calls between sweeps of idle keys, so one-off clients do not pile up


class RateLimiter:
    """At most `limit` hits per `window` seconds for each key; `limit <= 0` means no limit."""

    def __init__(
        self, limit: int, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._calls = 0

    def hit(self, key: str) -> float | None:
        """Count one hit for `key`: None when allowed, else the seconds until one is allowed
        again (a refused hit is not counted)."""
        if self.limit <= 0:
            return None
        with self._lock:
            now = self._clock()
            self._calls += 1
            if self._calls % _SWEEP_EVERY == 0:
                self._sweep(now)
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(hits[0] + self.window - now, 0.001)
            hits.append(now)
            return None

    def refund(self, key: str) -> None:
        """Give back the latest hit of `key` (a login that succeeded need not count)."""
        with self._lock:
            hits = self._hits.get(key)
            if hits:
                hits.pop()

    def _sweep(self, now: float) -> None:
        idle = [
            key for key, hits in self._hits.items() if not hits or hits[-1] <= now - self.window
        ]
        for key in idle:
            del self._hits[key]
