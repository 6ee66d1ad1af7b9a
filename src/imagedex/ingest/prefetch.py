"""The worker's fetch/decode stage: each received message prepared in a thread of its own.

Why threads that are handed over one by one rather than a map over the batch: one slow image
(a huge or hostile file) must not hold the images received with it. Whatever is ready goes on to
recognition once every task of the stage is done, or at most `linger` seconds after it was ready;
a task still running then stays here and joins a later batch. A task running longer than the time
limit is given up: its message is returned as overdue (the worker dead-letters it with that reason).

Python cannot stop a thread, so a given-up decode runs on until it ends and its result is thrown
away; at most `threads` such threads may linger, and while that many do, no new task starts. So
at most 2 x `threads` objects are held at once (each at most `max_upload_bytes`), plus their
decoded pixels, which the process-wide decode budget bounds. A decode in a child process could
be killed, but would copy every decoded picture between processes and double the worker's
memory for its interpreter; a decode that outlives its limit is the rare case (the decoder itself
refuses bombs and lying headers), so it is the case that pays.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from imagedex.ingest.pipeline import Prepared
from imagedex.queue.base import Message

#: Seconds a prepared message may wait for slower ones before it goes on without them.
LINGER = 1.0


@dataclass(eq=False)
class _Task:
    message: Message
    started: float = 0.0
    result: Prepared | None = None
    done_at: float = 0.0
    abandoned: bool = False


class Prefetcher:
    def __init__(
        self,
        prepare: Callable[[Message], Prepared],
        threads: int,
        time_limit: float,
        linger: float = LINGER,
    ) -> None:
        self._prepare = prepare
        self.threads = max(1, threads)
        self.time_limit = time_limit
        self.linger = linger
        self._cond = threading.Condition()
        self._waiting: deque[_Task] = deque()
        self._running: list[_Task] = []
        self._done: list[_Task] = []
        self._abandoned = 0  # given-up threads still decoding

    @property
    def unfinished(self) -> int:
        """Messages received but not yet prepared (waiting or running)."""
        with self._cond:
            return len(self._waiting) + len(self._running)

    @property
    def holding(self) -> int:
        """Messages this stage holds: unfinished or prepared but not yet taken."""
        with self._cond:
            return len(self._waiting) + len(self._running) + len(self._done)

    def add(self, messages: Iterable[Message]) -> None:
        with self._cond:
            self._waiting.extend(_Task(m) for m in messages)
            self._start()

    def _start(self) -> None:
        while (
            self._waiting and len(self._running) < self.threads and self._abandoned < self.threads
        ):
            task = self._waiting.popleft()
            task.started = time.monotonic()
            self._running.append(task)
            threading.Thread(
                target=self._run, args=(task,), name="imagedex-fetch", daemon=True
            ).start()

    def _run(self, task: _Task) -> None:
        try:
            result = self._prepare(task.message)
        except Exception as exc:  # prepare reports errors in its result; this is a backstop
            result = Prepared(task.message, error=exc)
        with self._cond:
            if task.abandoned:
                self._abandoned -= 1
            else:
                self._running.remove(task)
                task.result, task.done_at = result, time.monotonic()
                self._done.append(task)
            self._start()
            self._cond.notify_all()

    def take(self, wait: float) -> tuple[list[Prepared], list[Message]]:
        """Wait at most `wait` seconds for something to hand on: (prepared messages ready for
        recognition, messages whose preparation ran past the time limit)."""
        deadline = time.monotonic() + wait
        with self._cond:
            while True:
                now = time.monotonic()
                overdue = [t for t in self._running if now - t.started > self.time_limit]
                for task in overdue:
                    self._running.remove(task)
                    task.abandoned = True
                    self._abandoned += 1
                if overdue:
                    self._start()
                ready: list[Prepared] = []
                if self._done and (
                    not (self._waiting or self._running)
                    or now - min(t.done_at for t in self._done) >= self.linger
                ):
                    ready = [t.result for t in self._done if t.result is not None]
                    self._done.clear()
                if ready or overdue or now >= deadline:
                    return ready, [t.message for t in overdue]
                self._cond.wait(min(0.1, max(0.0, deadline - now)))

    def drain(self) -> list[Message]:
        """Stop: every message held here (the running ones are given up), to be released."""
        with self._cond:
            held = [*self._waiting, *self._running, *self._done]
            for task in self._running:
                task.abandoned = True
                self._abandoned += 1
            self._waiting.clear()
            self._running.clear()
            self._done.clear()
            return [t.message for t in held]
