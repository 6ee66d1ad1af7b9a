"""Exponential backoff with jitter while a dependency (queue, store, index) is down.

One `Backoff` per dependency: each failed attempt waits longer (doubling from `base`, at most
`cap`), with jitter so that several workers do not all knock at the same moment; a success resets
it. The outage is logged once when it starts and once when it ends, never once per attempt.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

#: The longest wait between two attempts at a dependency that is down.
MAX_BACKOFF = 60.0


class Backoff:
    def __init__(
        self,
        what: str,
        log: logging.Logger,
        base: float = 1.0,
        cap: float = MAX_BACKOFF,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.what = what
        self.log = log
        self.base = max(0.1, base)
        self.cap = max(self.base, cap)
        self._rng = rng
        self.failures = 0
        self._since = 0.0

    @property
    def down(self) -> bool:
        return self.failures > 0

    def failed(self, reason: str) -> float:
        """Record a failed attempt; the seconds to wait before the next one."""
        if self.failures == 0:
            self._since = time.monotonic()
            self.log.warning(
                "%s unavailable (%s); retrying with backoff (at most %.0fs apart)",
                self.what,
                reason,
                self.cap,
            )
        self.failures += 1
        ceiling = min(self.cap, self.base * 2 ** min(self.failures - 1, 30))
        delay = ceiling / 2 + self._rng() * ceiling / 2  # "equal jitter": never near zero
        self.log.debug(
            "%s attempt %d failed (%s); next in %.1fs", self.what, self.failures, reason, delay
        )
        return delay

    def succeeded(self) -> None:
        """Record a success: logs the end of an outage and resets the delay."""
        if self.failures:
            self.log.warning(
                "%s reachable again after %d failed attempts (%.0fs)",
                self.what,
                self.failures,
                time.monotonic() - self._since,
            )
        self.failures = 0
