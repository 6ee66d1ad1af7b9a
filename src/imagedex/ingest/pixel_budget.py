"""One process-wide budget for decoded pixels.

Every decode (thumbnails in the API, the worker's fetch threads; under `imagedex up` both live in
one process) reserves the bytes its pixels will take before decoding and gives them back after.
A reservation that does not fit waits, first come first served, for at most its own timeout and
then raises :class:`DecodeBusyError` (the thumbnail route answers 503 with ``Retry-After``, the
worker retries the image later). A single reservation larger than the whole budget is cut to the
budget: it runs alone instead of never.

A budget bounds the bytes alive at once; the process's memory follows it only if freed pixels go
back to the system. glibc's malloc keeps freed blocks below its (self-raising, up to 32 MiB) mmap
threshold in per-thread arenas, so eight thumbnail threads each kept their share: 40 MP decodes
within a 512 MiB budget still left `imagedex up` at 1.9 GB. The first use of the process budget
therefore fixes that threshold at 1 MiB (``mallopt``), so every large buffer is mapped and unmapped
on its own; a ``MALLOC_MMAP_THRESHOLD_`` or ``GLIBC_TUNABLES`` from the environment is respected,
and other C libraries are left alone.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from imagedex.errors import ImagedexError

__all__ = ["DEFAULT_BYTES", "DecodeBusyError", "PixelBudget", "configure", "process_budget"]

#: The budget before `configure` is called: the `decode_memory_mb` setting's default.
DEFAULT_BYTES = 512 * 1024 * 1024

_MMAP_THRESHOLD = 1024 * 1024  # allocations from this size up are returned to the system on free
_M_MMAP_THRESHOLD = -3  # mallopt parameter number (malloc.h)


class DecodeBusyError(ImagedexError):
    """No room in the decode budget within the wait allowed; retrying later may succeed."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PixelBudget:
    """A byte budget shared by threads, granted in arrival order."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self._used = 0
        self._cond = threading.Condition()
        self._queue: deque[object] = deque()

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def used(self) -> int:
        with self._cond:
            return self._used

    def resize(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        with self._cond:
            self._capacity = capacity
            self._cond.notify_all()

    @contextmanager
    def reserve(self, nbytes: int, timeout: float) -> Iterator[int]:
        """Hold `nbytes` (at most the whole budget) for the `with` block; yields what was held.

        Raises DecodeBusyError when it could not be granted within `timeout` seconds."""
        held = self._acquire(max(0, nbytes), timeout)
        try:
            yield held
        finally:
            with self._cond:
                self._used -= held
                self._cond.notify_all()

    def _acquire(self, nbytes: int, timeout: float) -> int:
        ticket = object()
        deadline = time.monotonic() + timeout
        with self._cond:
            self._queue.append(ticket)
            try:
                while True:
                    # read inside the loop: a resize changes what fits
                    wanted = min(nbytes, self._capacity)
                    if self._queue[0] is ticket and self._used + wanted <= self._capacity:
                        self._used += wanted
                        return wanted
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise DecodeBusyError(
                            f"busy: decoding other images uses the decode memory budget "
                            f"({self._used / 2**20:.0f} of {self._capacity / 2**20:.0f} MiB, "
                            f"setting decode_memory_mb); try again shortly",
                            retry_after=max(1.0, min(timeout / 2, 10.0)),
                        )
                    self._cond.wait(left)
            finally:
                self._queue.remove(ticket)
                self._cond.notify_all()  # the next in line may fit now


_process_budget = PixelBudget(DEFAULT_BYTES)
_policy_lock = threading.Lock()
_policy_applied = False


def process_budget() -> PixelBudget:
    """The budget every decode in this process shares."""
    _return_freed_memory()
    return _process_budget


def _return_freed_memory() -> None:
    global _policy_applied
    if _policy_applied:
        return
    with _policy_lock:
        if _policy_applied:
            return
        _policy_applied = True
        if "MALLOC_MMAP_THRESHOLD_" in os.environ or "GLIBC_TUNABLES" in os.environ:
            return
        try:
            libc = ctypes.CDLL(None)
            mallopt = libc.mallopt  # glibc; musl and others have none
            libc.gnu_get_libc_version  # noqa: B018 - present on glibc only
        except (OSError, AttributeError):
            return
        mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)


def configure(memory_mb: int) -> None:
    """Size the process budget (the `decode_memory_mb` setting); cheap to call again."""
    capacity = int(memory_mb) * 1024 * 1024
    if capacity != _process_budget.capacity:
        _process_budget.resize(capacity)
