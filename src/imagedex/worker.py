"""The pipeline loop: receive -> fetch -> decode -> recognize -> upsert -> delete.

Delivery is at-least-once; the effect in the index is exactly-once because document ids are
stable and upserts idempotent. Fetch and decode of the next batch overlap with recognition of
the current one, so the model (the expensive part) is never waiting on I/O.
"""

from __future__ import annotations

import logging
import posixpath
import queue as stdqueue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from imagedex.documents import ImageDocument, document_id
from imagedex.errors import (
    EventParseError,
    ImageDecodeError,
    ImagedexError,
    InvalidKeyError,
    ObjectNotFoundError,
)
from imagedex.events import ObjectEvent, parse_notification
from imagedex.imaging import DecodedImage, decode_image
from imagedex.queue.base import Message
from imagedex.recognition.base import Analysis, Recognizer
from imagedex.services import Services

log = logging.getLogger("imagedex.worker")

# Errors that no retry can fix: the message goes straight to the dead-letter queue.
PERMANENT_ERRORS: tuple[type[Exception], ...] = (
    EventParseError,
    ImageDecodeError,
    InvalidKeyError,
)
MAX_RETRY_DELAY = 300.0


class WrongBucketError(InvalidKeyError):
    """The event names a bucket this worker's store does not serve."""


@dataclass
class WorkerStats:
    messages: int = 0
    indexed: int = 0
    unchanged: int = 0
    removed: int = 0
    retried: int = 0
    dead_lettered: int = 0
    started: float = field(default_factory=time.monotonic)
    inference_seconds: float = 0.0

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


@dataclass
class _Item:
    """One object event of one message, prepared for recognition."""

    event: ObjectEvent
    document: ImageDocument | None = None
    image: DecodedImage | None = None


@dataclass
class _Prepared:
    message: Message
    items: list[_Item] = field(default_factory=list)
    error: Exception | None = None


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class Worker:
    def __init__(
        self,
        services: Services,
        recognizers: Sequence[Recognizer] | None = None,
        on_batch: Callable[[WorkerStats], None] | None = None,
    ) -> None:
        self.services = services
        self.settings = services.settings
        self._recognizers = list(recognizers) if recognizers is not None else None
        self.on_batch = on_batch
        self.stats = WorkerStats()
        self._in_flight: dict[str, float] = {}
        self._in_flight_lock = threading.Lock()
        self._decoders = ThreadPoolExecutor(max_workers=2, thread_name_prefix="imagedex-decode")

    @property
    def recognizers(self) -> list[Recognizer]:
        if self._recognizers is None:
            self._recognizers = self.services.recognizers()
        return self._recognizers

    @property
    def analyzed_with(self) -> dict[str, str]:
        return {r.name: r.version for r in self.recognizers}

    # -- the loop -------------------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None, once: bool = False) -> WorkerStats:
        """Process batches until `stop` is set, or (once=True) until no message is visible."""
        stop = stop or threading.Event()
        prepared: stdqueue.Queue[list[_Prepared] | None] = stdqueue.Queue(maxsize=1)
        _ = self.recognizers  # build before the first receive: no visibility time spent on it
        producer = threading.Thread(
            target=self._produce, args=(stop, once, prepared), name="imagedex-fetch", daemon=True
        )
        heartbeat = threading.Thread(
            target=self._heartbeat, args=(stop,), name="imagedex-heartbeat", daemon=True
        )
        producer.start()
        heartbeat.start()
        try:
            while True:
                batch = prepared.get()
                if batch is None:
                    break
                self._finish(batch)
                if self.on_batch is not None:
                    self.on_batch(self.stats)
        finally:
            stop.set()
            producer.join(timeout=30)
            heartbeat.join(timeout=5)
        return self.stats

    def _produce(
        self,
        stop: threading.Event,
        once: bool,
        out: stdqueue.Queue[list[_Prepared] | None],
    ) -> None:
        queue = self.services.queue
        try:
            while not stop.is_set():
                try:
                    messages = queue.receive(
                        max_messages=self.settings.batch_size,
                        visibility_timeout=self.settings.visibility_timeout,
                        wait_seconds=0.0 if once else self.settings.poll_interval,
                    )
                except Exception as exc:  # the queue itself is down: wait, never crash the loop
                    log.warning("cannot receive from the queue (%s); retrying", _describe(exc))
                    stop.wait(min(5.0, self.settings.retry_delay))
                    continue
                if not messages:
                    if once and self._drained():
                        break
                    if once:
                        stop.wait(self.settings.poll_interval)
                    continue
                self._track(m.receipt for m in messages)
                batch = list(self._decoders.map(self._prepare, messages))
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
            out.put(None)

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
                    log.warning("cannot extend visibility (%s)", _describe(exc))

    def _track(self, receipts: object) -> None:
        now = time.monotonic()
        with self._in_flight_lock:
            for receipt in receipts:  # type: ignore[attr-defined]
                self._in_flight[receipt] = now

    def _untrack(self, receipt: str) -> None:
        with self._in_flight_lock:
            self._in_flight.pop(receipt, None)

    # -- stage 1: parse, fetch, decode ----------------------------------------------------------

    def _prepare(self, message: Message) -> _Prepared:
        result = _Prepared(message)
        try:
            for event in parse_notification(message.body):
                result.items.append(self._prepare_event(event))
        except Exception as exc:
            result.error = exc
        return result

    def _prepare_event(self, event: ObjectEvent) -> _Item:
        store = self.services.store
        if event.bucket != store.bucket:
            raise WrongBucketError(
                f"event is for bucket {event.bucket!r} but this worker serves {store.bucket!r}"
            )
        item = _Item(event)
        if event.kind == "removed":
            return item
        try:
            info = store.head(event.key)
        except ObjectNotFoundError:
            return _Item(ObjectEvent("removed", event.bucket, event.key))  # deleted since
        doc_id = document_id(info.bucket, info.key)
        title = info.metadata.get("title") or posixpath.basename(info.key)
        existing = self.services.index.get(doc_id)
        if (
            existing is not None
            and existing.etag == info.etag
            and existing.title == title
            and existing.analyzed_with == self.analyzed_with
        ):
            return item  # duplicate delivery of an already indexed version: nothing to do
        try:
            data = store.get(event.key)
        except ObjectNotFoundError:
            return _Item(ObjectEvent("removed", event.bucket, event.key))
        decoded = decode_image(data, max_pixels=self.settings.max_pixels, draft_size=(320, 320))
        item.image = decoded
        item.document = ImageDocument(
            id=doc_id,
            bucket=info.bucket,
            key=info.key,
            title=title,
            s3_location=store.location(info.key),
            etag=info.etag,
            size=info.size,
            content_type=decoded.content_type,
            width=decoded.width,
            height=decoded.height,
            taken_at=decoded.taken_at,
            camera=decoded.camera,
            gps=decoded.gps,
            ingested_at=_now_iso(),
            analyzed_with=self.analyzed_with,
        )
        return item

    # -- stage 2: recognize, index, acknowledge -------------------------------------------------

    def _finish(self, batch: list[_Prepared]) -> None:
        ok = [p for p in batch if p.error is None]
        for failed in (p for p in batch if p.error is not None):
            self._fail(failed, failed.error)  # type: ignore[arg-type]
        to_analyze = [item for p in ok for item in p.items if item.image is not None]
        if to_analyze:
            try:
                self._analyze(to_analyze)
            except Exception as exc:
                for p in ok:
                    self._fail(p, exc)
                return
        documents = [item.document for p in ok for item in p.items if item.document is not None]
        removals = [item.event for p in ok for item in p.items if item.event.kind == "removed"]
        index = self.services.index
        try:
            if documents:
                index.upsert(documents)
            for event in removals:
                index.delete(document_id(event.bucket, event.key))
        except Exception as exc:
            log.warning("index write failed (%s); %d messages will be retried", exc, len(ok))
            for p in ok:
                self._fail(p, exc)
            return
        receipts = [p.message.receipt for p in ok]
        try:
            self.services.queue.delete(receipts)
        except Exception as exc:  # documents are indexed; a redelivery is a harmless no-op
            log.warning("cannot delete %d processed messages (%s)", len(receipts), exc)
        for receipt in receipts:
            self._untrack(receipt)
        self.stats.messages += len(ok)
        self.stats.indexed += len(documents)
        self.stats.removed += len(removals)
        self.stats.unchanged += sum(
            1 for p in ok for i in p.items if i.event.kind == "created" and i.document is None
        )

    def _analyze(self, items: list[_Item]) -> None:
        images = [item.image.image for item in items]  # type: ignore[union-attr]
        started = time.perf_counter()
        for recognizer in self.recognizers:
            analyses = recognizer.analyze(images)
            for item, analysis in zip(items, analyses, strict=True):
                _merge(item.document, analysis)  # type: ignore[arg-type]
        self.stats.inference_seconds += time.perf_counter() - started
        for item in items:
            item.image = None  # free pixels early

    def _fail(self, prepared: _Prepared, exc: BaseException) -> None:
        message = prepared.message
        reason = _describe(exc)
        keys = ", ".join(i.event.key for i in prepared.items) or "(unparsed message)"
        if isinstance(exc, PERMANENT_ERRORS):
            log.error("dead-lettering message %s [%s]: %s", message.id, keys, reason)
            self._dead_letter(message, reason)
        else:
            delay = min(
                MAX_RETRY_DELAY, self.settings.retry_delay * 2 ** (message.receive_count - 1)
            )
            log.warning(
                "attempt %d for message %s failed (%s); retrying in %.0fs",
                message.receive_count,
                message.id,
                reason,
                delay,
            )
            self._release(message, reason, delay)

    def _dead_letter(self, message: Message, reason: str) -> None:
        try:
            self.services.queue.dead_letter(message.receipt, reason)
            self.stats.dead_lettered += 1
        except Exception as exc:
            log.warning("cannot dead-letter message %s (%s)", message.id, _describe(exc))
        self._untrack(message.receipt)

    def _release(self, message: Message, reason: str, delay: float, count: bool = True) -> None:
        try:
            if count and message.receive_count >= self.services.queue.max_receive_count:
                log.error(
                    "giving up on message %s after %d attempts: %s",
                    message.id,
                    message.receive_count,
                    reason,
                )
                self.stats.dead_lettered += 1
            elif count:
                self.stats.retried += 1
            self.services.queue.release(message.receipt, reason, delay)
        except Exception as exc:  # the visibility timeout will bring it back anyway
            log.warning("cannot release message %s (%s)", message.id, _describe(exc))
        self._untrack(message.receipt)


def _merge(document: ImageDocument, analysis: Analysis) -> None:
    document.labels.extend(analysis.labels)
    document.faces.extend(analysis.faces)
    document.text.extend(analysis.text)
    document.moderation.extend(analysis.moderation)
    if analysis.embedding is not None:
        document.embedding = analysis.embedding


__all__ = ["PERMANENT_ERRORS", "ImagedexError", "Worker", "WorkerStats"]
