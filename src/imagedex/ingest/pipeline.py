"""One batch of queue messages through fetch -> decode -> recognise -> index.

Used by the queue worker (`worker.py`) and the Lambda handler (`aws/lambda_handler.py`); it
decides what happened to each message but never touches the queue itself.
"""

from __future__ import annotations

import logging
import posixpath
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from imagedex.documents import ImageDocument, document_id
from imagedex.enrich.base import Enricher
from imagedex.enrich.description import describe as describe_image
from imagedex.enrich.phash import dhash
from imagedex.errors import (
    EventParseError,
    ImageDecodeError,
    InvalidKeyError,
    ObjectNotFoundError,
)
from imagedex.ingest.events import ObjectEvent, parse_notification
from imagedex.ingest.imaging import DecodedImage, decode_image
from imagedex.queue.base import Message
from imagedex.recognition.base import Analysis, AnalyzerInput, Recognizer
from imagedex.recognition.evidence import finish as finish_labels
from imagedex.services import Services

log = logging.getLogger("imagedex.ingest.pipeline")

# Errors that no retry can fix: the message goes straight to the dead-letter queue.
PERMANENT_ERRORS: tuple[type[Exception], ...] = (
    EventParseError,
    ImageDecodeError,
    InvalidKeyError,
)
DECODE_SIZE = (320, 320)  # JPEG draft-mode target: enough for the 224-px classifier input


class WrongBucketError(InvalidKeyError):
    """The event names a bucket this worker's store does not serve."""


@dataclass
class Item:
    """One object event of one message, prepared for recognition."""

    event: ObjectEvent
    document: ImageDocument | None = None
    image: DecodedImage | None = None
    error: Exception | None = None
    data: bytes | None = None  # the original file, kept only for recognizers that read it


@dataclass
class Prepared:
    """A message after stage 1; `error` is set when it could not be parsed or fetched."""

    message: Message
    events: list[ObjectEvent] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    error: Exception | None = None

    @property
    def keys(self) -> str:
        """The object keys the message is about, for log lines a person can act on."""
        return ", ".join(e.key for e in self.events) or "(unparsed message)"


@dataclass
class Outcome:
    message: Message
    error: Exception | None = None
    keys: str = ""
    indexed: int = 0
    unchanged: int = 0
    removed: int = 0

    @property
    def permanent(self) -> bool:
        return isinstance(self.error, PERMANENT_ERRORS)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class Pipeline:
    def __init__(
        self,
        services: Services,
        recognizers: Sequence[Recognizer],
        enrichers: Sequence[Enricher] = (),
    ) -> None:
        self.services = services
        self.recognizers = list(recognizers)
        self.enrichers = list(enrichers)
        self.analyzed_with = {r.name: r.version for r in self.recognizers}
        self._keep_originals = any(r.reads_original for r in self.recognizers)
        self.analyzed_with.update({e.name: e.version for e in self.enrichers})
        self.inference_seconds = 0.0

    # -- stage 1: parse, fetch, decode (thread-safe; runs in a pool) ----------------------------

    def prepare(self, message: Message) -> Prepared:
        result = Prepared(message)
        try:
            result.events = parse_notification(message.body)
            for event in result.events:
                result.items.append(self._prepare_event(event))
        except Exception as exc:
            result.error = exc
        return result

    def _prepare_event(self, event: ObjectEvent) -> Item:
        store = self.services.store
        if event.bucket != store.bucket:
            raise WrongBucketError(
                f"event is for bucket {event.bucket!r} but this worker serves {store.bucket!r}"
            )
        if event.kind == "removed":
            return Item(event)
        try:
            info = store.head(event.key)
        except ObjectNotFoundError:
            return Item(ObjectEvent("removed", event.bucket, event.key))  # deleted since
        doc_id = document_id(info.bucket, info.key)
        title = info.metadata.get("title") or posixpath.basename(info.key)
        existing = self.services.index.get(doc_id)
        if (
            existing is not None
            and not event.force
            and existing.etag == info.etag
            and existing.title == title
            and existing.analyzed_with == self.analyzed_with
        ):
            return Item(event)  # a repeated delivery of an indexed version: nothing to do
        try:
            data = store.get(event.key)
        except ObjectNotFoundError:
            return Item(ObjectEvent("removed", event.bucket, event.key))
        decoded = decode_image(
            data, max_pixels=self.services.settings.max_pixels, draft_size=DECODE_SIZE
        )
        document = ImageDocument(
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
            # re-analysing the same object version (reprocess, new analyzers) keeps its place
            # on the timeline; a new version of the object is a new ingestion
            ingested_at=(
                existing.ingested_at
                if existing is not None and existing.etag == info.etag and existing.ingested_at
                else now_iso()
            ),
            analyzed_with=dict(self.analyzed_with),
            phash=dhash(decoded.image),
        )
        kept = data if self._keep_originals else None
        return Item(event, document=document, image=decoded, data=kept)

    # -- stage 2: recognise and index -----------------------------------------------------------

    def complete(self, batch: Sequence[Prepared]) -> list[Outcome]:
        """Recognise and index a prepared batch; one Outcome per message, in order."""
        outcomes = {id(p): Outcome(p.message, error=p.error, keys=p.keys) for p in batch}
        live = [p for p in batch if p.error is None]
        self._drop_duplicates(live)
        self._analyze_isolating_failures(live)
        for prepared in live:
            failed = next((i.error for i in prepared.items if i.error is not None), None)
            if failed is not None:
                outcomes[id(prepared)].error = failed
        writable = [p for p in live if outcomes[id(p)].error is None]
        documents = [i.document for p in writable for i in p.items if i.document is not None]
        floor = self.services.settings.min_confidence
        for document in documents:
            document.labels = finish_labels(document.labels, floor)
        try:
            self._enrich(documents)
            if documents:
                self.services.index.upsert(documents)
            for prepared in writable:
                for item in prepared.items:
                    if item.event.kind == "removed":
                        self.services.index.delete(document_id(item.event.bucket, item.event.key))
        except Exception as exc:
            log.warning("index write failed (%s); %d messages will be retried", exc, len(writable))
            for prepared in writable:
                outcomes[id(prepared)].error = exc
            return [outcomes[id(p)] for p in batch]
        self._after_indexed(documents)
        for prepared in writable:
            outcome = outcomes[id(prepared)]
            for item in prepared.items:
                if item.event.kind == "removed":
                    outcome.removed += 1
                elif item.document is not None:
                    outcome.indexed += 1
                else:
                    outcome.unchanged += 1
        return [outcomes[id(p)] for p in batch]

    def _after_indexed(self, documents: Sequence[ImageDocument]) -> None:
        """Alert rules and other hooks: their failures are logged, never an ingestion error."""
        if not documents:
            return
        for hook in self.services.indexed_hooks():
            try:
                hook(documents)
            except Exception as exc:
                log.warning("a hook after indexing failed (%s)", describe(exc))

    def _enrich(self, documents: Sequence[ImageDocument]) -> None:
        """Fields derived from the recognised ones: description, near-duplicates, embedding."""
        index = self.services.index
        for doc in documents:
            doc.description = describe_image(doc)
            if doc.phash:
                doc.near_duplicates = [i for i in index.near_duplicates(doc.phash) if i != doc.id]
        started = time.perf_counter()
        try:
            for enricher in self.enrichers:
                enricher.enrich(documents)  # the embedding model: inference time too
        finally:
            self.inference_seconds += time.perf_counter() - started

    @staticmethod
    def _drop_duplicates(batch: Sequence[Prepared]) -> None:
        """Two events for one object version in one batch (S3 sends two for some multipart
        uploads): recognise it once."""
        seen: set[tuple[str, str]] = set()
        for prepared in batch:
            for item in prepared.items:
                if item.document is None:
                    continue
                version = (item.document.id, item.document.etag)
                if version in seen:
                    item.document = None
                    item.image = None
                seen.add(version)

    def _analyze_isolating_failures(self, batch: Sequence[Prepared]) -> None:
        """Run every recognizer on the batch. A recognizer that fails on the batch is retried
        image by image, so one bad image cannot fail the others; an image on which some (not
        all) recognizers fail is indexed with the others' results and the failures recorded in
        `errors`; an image on which every recognizer fails fails its message (retried)."""
        items = [i for p in batch for i in p.items if i.image is not None]
        if not items:
            return
        failures: dict[int, dict[str, Exception]] = {id(i): {} for i in items}
        started = time.perf_counter()
        try:
            for recognizer in self.recognizers:
                try:
                    self._run(recognizer, items)
                except Exception as exc:
                    if len(items) == 1:
                        failures[id(items[0])][recognizer.name] = exc
                        continue
                    log.info(
                        "%s failed on a batch (%s); retrying image by image",
                        recognizer.name,
                        describe(exc),
                    )
                    for item in items:
                        try:
                            self._run(recognizer, [item])
                        except Exception as single:
                            failures[id(item)][recognizer.name] = single
        finally:
            self.inference_seconds += time.perf_counter() - started
        for item in items:
            failed = failures[id(item)]
            document = item.document
            if document is None:
                continue
            if failed and len(failed) == len(self.recognizers):
                item.error = next(iter(failed.values()))
            for name, problem in failed.items():
                document.errors[name] = describe(problem)
                document.analyzed_with.pop(name, None)
            item.image = None  # free the pixels early
            item.data = None

    def _run(self, recognizer: Recognizer, items: Sequence[Item]) -> None:
        inputs = [self._input(item) for item in items if item.image is not None]
        analyses = recognizer.analyze(inputs)
        if len(analyses) != len(inputs):
            raise RuntimeError(
                f"{recognizer.name} returned {len(analyses)} results for {len(inputs)}"
            )
        for item, analysis in zip(items, analyses, strict=True):
            merge(item.document, analysis)  # type: ignore[arg-type]

    def _input(self, item: Item) -> AnalyzerInput:
        """The image with its location and original file (kept, or fetched again if some
        analyzer asks for it without having declared `reads_original`)."""
        assert item.image is not None
        key = item.event.key
        original: bytes | Callable[[], bytes | None] = (
            item.data if item.data is not None else lambda: self.services.store.get(key)
        )
        location = item.document.s3_location if item.document is not None else None
        return AnalyzerInput(item.image.image, location, original)


def merge(document: ImageDocument, analysis: Analysis) -> None:
    document.labels.extend(analysis.labels)
    document.faces.extend(analysis.faces)
    document.text.extend(analysis.text)
    document.moderation.extend(analysis.moderation)
    if analysis.embedding is not None:
        document.embedding = analysis.embedding
    if analysis.visual_embedding is not None:
        document.visual_embedding = analysis.visual_embedding
