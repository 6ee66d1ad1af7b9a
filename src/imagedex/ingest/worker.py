"""The queue worker: receive -> pipeline -> delete, retry or dead-letter; runs until stopped.

Delivery is at-least-once; the effect in the index is exactly-once because document ids are
stable and upserts idempotent. Fetch and decode of the next batch (`prefetch.py`, a thread per
message) overlap with recognition of the current one, so the model is never waiting on I/O, and
an image that takes longer than `image_timeout` is dead-lettered without holding the others.
While the queue, the store or the index is down the worker backs off (`backoff.py`); after a
crash it starts careful (`crashes.py`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue as stdqueue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from imagedex.enrich.base import Enricher
from imagedex.errors import IndexUnavailableError, ObjectNotFoundError
from imagedex.ingest.backoff import Backoff
from imagedex.ingest.crashes import CrashJournal
from imagedex.ingest.events import parse_notification
from imagedex.ingest.pipeline import (
    ImageTimeoutError,
    Outcome,
    Pipeline,
    Prepared,
    StoreUnavailableError,
    describe,
)
from imagedex.ingest.prefetch import Prefetcher
from imagedex.queue.base import Message
from imagedex.recognition.base import Recognizer
from imagedex.services import Services

log = logging.getLogger("imagedex.ingest.worker")

MAX_RETRY_DELAY = 300.0


@dataclass
class WorkerStats:
    messages: int = 0
    indexed: int = 0
    unchanged: int = 0
    removed: int = 0
    retried: int = 0
    dead_lettered: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


class Worker:
    def __init__(
        self,
        services: Services,
        recognizers: Sequence[Recognizer] | None = None,
        on_batch: Callable[[WorkerStats], None] | None = None,
        enrichers: Sequence[Enricher] | None = None,
    ) -> None:
        self.services = services
        self.settings = services.settings
        self._recognizers = list(recognizers) if recognizers is not None else None
        # tests that pass their own recognizers get no default enrichers unless they ask
        self._enrichers = (
            list(enrichers) if enrichers is not None else ([] if recognizers is not None else None)
        )
        self._pipeline: Pipeline | None = None
        self.on_batch = on_batch
        self.stats = WorkerStats()
        self._in_flight: dict[str, float] = {}
        self._index_down = threading.Event()
        self._store_down: str | None = None  # a key whose fetch found the store unreachable
        self._in_flight_lock = threading.Lock()
        self._settled = threading.Event()  # the last batch handed on is settled
        self._settled.set()
        self._careful_until = 0.0
        self._queue_backoff = Backoff("queue", log, base=self.settings.retry_delay)
        self._index_backoff = Backoff("search index", log, base=self.settings.retry_delay)
        self._store_backoff = Backoff("object store", log, base=self.settings.retry_delay)

    @property
    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            recognizers = self._recognizers
            if recognizers is None:
                recognizers = self.services.recognizers()
            enrichers = self._enrichers
            if enrichers is None:
                enrichers = self.services.enrichers()
            self._pipeline = Pipeline(self.services, recognizers, enrichers)
        return self._pipeline

    def run(self, stop: threading.Event | None = None, once: bool = False) -> WorkerStats:
        """Process batches until `stop` is set, or (once=True) until the queue is drained."""
        stop = stop or threading.Event()
        prepared: stdqueue.Queue[list[Prepared] | None] = stdqueue.Queue(maxsize=1)
        pipeline = self.pipeline  # build the analyzers now; each loads its model on first use
        journal = CrashJournal(self.settings.data_dir)
        if journal.start():
            log.warning(
                "a worker on this data dir died while working; taking one message at a time "
                "for a while, so only a message that kills the worker again is counted again"
            )
            self._careful_until = time.monotonic() + 2 * self.settings.visibility_timeout
        producer = threading.Thread(
            target=self._produce,
            args=(pipeline, stop, once, prepared),
            name="imagedex-fetch",
            daemon=True,
        )
        heartbeat = threading.Thread(
            target=self._heartbeat, args=(stop,), name="imagedex-heartbeat", daemon=True
        )
        producer.start()
        heartbeat.start()
        try:
            while (batch := prepared.get()) is not None:
                try:
                    self._settle(pipeline.complete(batch))
                finally:
                    self._settled.set()
                if self.on_batch is not None:
                    self.on_batch(self.stats)
        finally:
            stop.set()
            producer.join(timeout=30)
            heartbeat.join(timeout=5)
            journal.stop()
        return self.stats

    # -- stage 1 runs in its own thread ---------------------------------------------------------

    def _produce(
        self,
        pipeline: Pipeline,
        stop: threading.Event,
        once: bool,
        out: stdqueue.Queue[list[Prepared] | None],
    ) -> None:
        threads = self.settings.fetch_threads or (8 if self.services.store.emits_events() else 2)
        fetcher = Prefetcher(pipeline.prepare, threads, self.settings.image_timeout)
        try:
            while not stop.is_set():
                if self._index_down.is_set():
                    self._wait_until_reachable(stop, self._index_backoff, self._probe_index)
                    self._index_down.clear()
                    continue
                if self._store_down is not None:
                    probe = functools.partial(self._probe_store, self._store_down)
                    self._wait_until_reachable(stop, self._store_backoff, probe)
                    self._store_down = None
                    continue
                room = fetcher.unfinished < threads and self._may_receive(fetcher)
                if room and not self._receive(fetcher, stop, once):
                    break
                ready, overdue = fetcher.take(wait=0.5 if fetcher.holding else 0.0)
                for message in overdue:
                    self._give_up_slow(message)
                if ready and not self._hand_on(ready, out, stop):
                    break
        finally:
            for message in fetcher.drain():
                self._release(message, "worker stopped", delay=0.0, count=False)
            out.put(None)

    def _careful(self) -> bool:
        return time.monotonic() < self._careful_until

    def _may_receive(self, fetcher: Prefetcher) -> bool:
        """Careful after a crash: one message at a time, after the last one is settled."""
        return not self._careful() or (fetcher.holding == 0 and self._settled.is_set())

    def _receive(self, fetcher: Prefetcher, stop: threading.Event, once: bool) -> bool:
        """Receive into the fetch stage; False when a run with once=True is done."""
        try:
            messages = self.services.queue.receive(
                max_messages=1 if self._careful() else self.settings.batch_size,
                visibility_timeout=self.settings.visibility_timeout,
                wait_seconds=0.0 if once or fetcher.holding else self.settings.poll_interval,
            )
        except Exception as exc:  # the queue itself is down: wait, never crash the loop
            stop.wait(self._queue_backoff.failed(describe(exc)))
            return True
        self._queue_backoff.succeeded()
        if messages:
            self._track(m.receipt for m in messages)
            fetcher.add(messages)
        elif once and not fetcher.holding:
            if self._drained():
                return False
            stop.wait(self.settings.poll_interval)
        return True

    def _hand_on(
        self,
        batch: list[Prepared],
        out: stdqueue.Queue[list[Prepared] | None],
        stop: threading.Event,
    ) -> bool:
        """Give a prepared batch to recognition; False (messages handed back) when stopping."""
        self._settled.clear()
        while not stop.is_set():
            try:
                out.put(batch, timeout=0.5)
                return True
            except stdqueue.Full:
                continue
        for item in batch:  # stopping with a batch in hand: hand the messages back untouched
            self._release(item.message, "worker stopped", delay=0.0, count=False)
        self._settled.set()
        return False

    def _give_up_slow(self, message: Message) -> None:
        """Dead-letter a message whose image took longer than the time limit to fetch and
        decode; the rest of its batch has gone on without it."""
        error = ImageTimeoutError(
            f"fetching and decoding took longer than {self.settings.image_timeout:g} s "
            "(setting image_timeout); a slower image is not retried"
        )
        self._fail(Outcome(message, error=error, keys=_keys(message)))

    def _wait_until_reachable(
        self, stop: threading.Event, backoff: Backoff, probe: Callable[[], None]
    ) -> None:
        """Circuit breaker: while the index or store is down, receive nothing (every receive
        would only burn an attempt of the message's redrive budget); probe with backoff."""
        delay = backoff.failed("a batch failed on it")
        while not stop.wait(delay):
            try:
                probe()
            except Exception as exc:
                delay = backoff.failed(describe(exc))
                continue
            backoff.succeeded()
            return

    def _probe_index(self) -> None:
        self.services.index.count()

    def _probe_store(self, key: str) -> None:
        with contextlib.suppress(ObjectNotFoundError):  # an answer: the store is reachable
            self.services.store.head(key)

    def _drained(self) -> bool:
        """Nothing visible and nothing in flight (ours, or retries waiting out their delay)."""
        try:
            stats = self.services.queue.stats()
        except Exception:
            return False
        return stats.visible == 0 and stats.in_flight == 0

    def _heartbeat(self, stop: threading.Event) -> None:
        """Extend the visibility of messages still being worked on, as SQS consumers should."""
        timeout = self.settings.visibility_timeout
        while not stop.wait(max(1.0, timeout / 3)):
            now = time.monotonic()
            with self._in_flight_lock:
                receipts = [r for r, since in self._in_flight.items() if now - since > timeout / 3]
            for receipt in receipts:
                try:
                    self.services.queue.extend(receipt, timeout)
                except Exception as exc:
                    log.warning("cannot extend visibility (%s)", describe(exc))

    def release_in_flight(self, reason: str) -> int:
        """Hand every message still being worked on back to the queue, visible again at once
        (not after the visibility timeout): for a process stopping before its batch is done.
        Should the batch finish after all, its index writes are idempotent and its deletes
        find no receipt. Returns how many were released."""
        with self._in_flight_lock:
            receipts = list(self._in_flight)
            self._in_flight.clear()
        for receipt in receipts:
            try:
                self.services.queue.release(receipt, reason, 0.0)
            except Exception as exc:  # the visibility timeout will bring it back anyway
                log.warning("cannot release a message (%s)", describe(exc))
        return len(receipts)

    def _track(self, receipts: Iterable[str]) -> None:
        now = time.monotonic()
        with self._in_flight_lock:
            for receipt in receipts:
                self._in_flight[receipt] = now

    def _untrack(self, receipt: str) -> None:
        with self._in_flight_lock:
            self._in_flight.pop(receipt, None)

    # -- acknowledging ----------------------------------------------------------------------------

    def _settle(self, outcomes: list[Outcome]) -> None:
        done = [o for o in outcomes if o.error is None]
        if any(isinstance(o.error, IndexUnavailableError) for o in outcomes):
            self._index_down.set()
        store_down = [o for o in outcomes if isinstance(o.error, StoreUnavailableError)]
        if store_down and len(done) == 0:
            self._store_down = store_down[0].error.key  # type: ignore[union-attr]
        for outcome in outcomes:
            if outcome.error is not None:
                self._fail(outcome)
        receipts = [o.message.receipt for o in done]
        if receipts:
            try:
                self.services.queue.delete(receipts)
            except Exception as exc:  # indexed already; a redelivery is a harmless no-op
                log.warning("cannot delete %d processed messages (%s)", len(receipts), exc)
        for receipt in receipts:
            self._untrack(receipt)
        self.stats.messages += len(done)
        self.stats.indexed += sum(o.indexed for o in done)
        self.stats.unchanged += sum(o.unchanged for o in done)
        self.stats.removed += sum(o.removed for o in done)

    def _fail(self, outcome: Outcome) -> None:
        message = outcome.message
        reason = describe(outcome.error)  # type: ignore[arg-type]
        if outcome.permanent:
            log.error("dead-lettering message %s [%s]: %s", message.id, outcome.keys, reason)
            try:
                self.services.queue.dead_letter(message.receipt, reason)
                self.stats.dead_lettered += 1
            except Exception as exc:
                log.warning("cannot dead-letter message %s (%s)", message.id, describe(exc))
            self._untrack(message.receipt)
            return
        delay = min(MAX_RETRY_DELAY, self.settings.retry_delay * 2 ** (message.receive_count - 1))
        self._release(message, f"{reason} [{outcome.keys}]", delay)

    def _release(self, message: Message, reason: str, delay: float, count: bool = True) -> None:
        queue = self.services.queue
        if count and message.receive_count >= queue.max_receive_count:
            log.error(
                "giving up on message %s after %d attempts: %s",
                message.id,
                message.receive_count,
                reason,
            )
            self.stats.dead_lettered += 1
        elif count:
            log.warning(
                "attempt %d of message %s failed (%s); retrying in %.1fs",
                message.receive_count,
                message.id,
                reason,
                delay,
            )
            self.stats.retried += 1
        try:
            queue.release(message.receipt, reason, delay)
        except Exception as exc:  # the visibility timeout will bring it back anyway
            log.warning("cannot release message %s (%s)", message.id, describe(exc))
        self._untrack(message.receipt)


def _keys(message: Message) -> str:
    try:
        return ", ".join(e.key for e in parse_notification(message.body)) or "(no object)"
    except Exception:
        return "(unparsed message)"
