"""The queue worker: receive -> pipeline -> delete, retry or dead-letter; runs until stopped.

Delivery is at-least-once; the effect in the index is exactly-once because document ids are
stable and upserts idempotent. Fetch and decode of the next batch (a background thread) overlap
with recognition of the current one, so the model is never waiting on I/O.
"""

from __future__ import annotations

import logging
import queue as stdqueue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from imagedex.enrich.base import Enricher
from imagedex.errors import IndexUnavailableError
from imagedex.ingest.pipeline import Outcome, Pipeline, Prepared, describe
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
        self._in_flight_lock = threading.Lock()

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
                self._settle(pipeline.complete(batch))
                if self.on_batch is not None:
                    self.on_batch(self.stats)
        finally:
            stop.set()
            producer.join(timeout=30)
            heartbeat.join(timeout=5)
        return self.stats

    # -- stage 1 runs in its own thread ---------------------------------------------------------

    def _produce(
        self,
        pipeline: Pipeline,
        stop: threading.Event,
        once: bool,
        out: stdqueue.Queue[list[Prepared] | None],
    ) -> None:
        queue = self.services.queue
        threads = self.settings.fetch_threads or (8 if self.services.store.emits_events() else 2)
        decoders = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="imagedex-fetch")
        try:
            while not stop.is_set():
                if self._index_down.is_set():
                    self._wait_for_index(stop)
                    continue
                try:
                    messages = queue.receive(
                        max_messages=self.settings.batch_size,
                        visibility_timeout=self.settings.visibility_timeout,
                        wait_seconds=0.0 if once else self.settings.poll_interval,
                    )
                except Exception as exc:  # the queue itself is down: wait, never crash the loop
                    log.warning("cannot receive from the queue (%s); retrying", describe(exc))
                    stop.wait(min(5.0, max(0.5, self.settings.retry_delay)))
                    continue
                if not messages:
                    if once and self._drained():
                        break
                    if once:
                        stop.wait(self.settings.poll_interval)
                    continue
                self._track(m.receipt for m in messages)
                batch = list(decoders.map(pipeline.prepare, messages))
                while not stop.is_set():
                    try:
                        out.put(batch, timeout=0.5)
                        break
                    except stdqueue.Full:
                        continue
                else:  # stopping with a batch in hand: hand the messages back untouched
                    for item in batch:
                        self._release(item.message, "worker stopped", delay=0.0, count=False)
        finally:
            decoders.shutdown(wait=False)
            out.put(None)

    def _wait_for_index(self, stop: threading.Event) -> None:
        """Circuit breaker: while the index is down, receive nothing (every receive would only
        burn an attempt of the message's redrive budget); probe until it answers again."""
        delay = 1.0
        while not stop.is_set():
            try:
                self.services.index.count()
            except Exception as exc:
                log.warning(
                    "search index still unavailable (%s); next check in %.0fs", describe(exc), delay
                )
                stop.wait(delay)
                delay = min(30.0, delay * 2)
                continue
            log.warning("search index is reachable again; resuming")
            self._index_down.clear()
            return

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
