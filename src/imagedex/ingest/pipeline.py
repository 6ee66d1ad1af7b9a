"""One batch of queue messages through fetch -> decode -> recognise -> index.

Used by the queue worker (`worker.py`) and the Lambda handler (`aws/lambda_handler.py`); it
decides what happened to each message but never touches the queue itself.
"""

from __future__ import annotations

import logging
import posixpath
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import numpy as np

from imagedex.custom.apply import LabelBook
from imagedex.documents import ImageDocument, document_id
from imagedex.enrich.base import Enricher
from imagedex.enrich.description import describe as describe_image
from imagedex.enrich.phash import dhash
from imagedex.errors import (
    EventParseError,
    ImageDecodeError,
    ImagedexError,
    InvalidKeyError,
    ObjectNotFoundError,
)
from imagedex.ingest.events import ObjectEvent, parse_notification
from imagedex.ingest.imaging import DecodedImage, decode_image
from imagedex.ingest.titles import clean_title
from imagedex.people import recognise
from imagedex.queue.base import Message
from imagedex.recognition.base import Analysis, AnalyzerInput, Recognizer
from imagedex.recognition.evidence import finish as finish_labels
from imagedex.services import Services, build_enricher, build_recognizer
from imagedex.storage.base import ObjectTooLargeError

log = logging.getLogger("imagedex.ingest.pipeline")
T = TypeVar("T")


class ImageTimeoutError(ImagedexError):
    """Fetching and decoding the image took longer than the `image_timeout` setting."""


class StoreUnavailableError(ImagedexError):
    """The object store did not answer (not: the object is missing); retried."""

    def __init__(self, key: str, cause: Exception) -> None:
        super().__init__(f"cannot read {key!r} from the object store: {describe(cause)}")
        self.key = key


# Errors that no retry can fix: the message goes straight to the dead-letter queue.
PERMANENT_ERRORS: tuple[type[Exception], ...] = (
    EventParseError,
    ImageDecodeError,
    InvalidKeyError,
    ObjectTooLargeError,
    ImageTimeoutError,
)
DECODE_SIZE = (320, 320)  # JPEG draft-mode target: enough for the 224-px classifier input


class WrongBucketError(InvalidKeyError):
    """The event names a bucket this worker's store does not serve."""


class UnsupportedWorkError(ImagedexError):
    """A reprocess asked for analyzers (or versions) this worker cannot run. Retried, so that a
    worker that can run them may take it; dead-lettered with this reason when none does."""


@dataclass(frozen=True)
class Plan:
    """What one image is analysed with: the worker's own analyzers, or those a reprocess asked
    for (`ObjectEvent.analyzers`)."""

    recognizers: tuple[Recognizer, ...]
    enrichers: tuple[Enricher, ...] = ()
    #: embeds the `faces` analyzer's faces and groups them into people (face_recognition on)
    people: recognise.FaceRecognition | None = None

    @property
    def versions(self) -> dict[str, str]:
        """What `analyzed_with` records."""
        versions = {r.name: r.version for r in self.recognizers}
        if self.people is not None:
            versions[self.people.name] = self.people.version
        versions.update({e.name: e.version for e in self.enrichers})
        return versions

    @property
    def reads_original(self) -> bool:
        return any(r.reads_original for r in self.recognizers)

    def runs(self, step: Recognizer | Enricher) -> bool:
        return any(step is mine for mine in (*self.recognizers, *self.enrichers))


@dataclass
class Item:
    """One object event of one message, prepared for recognition."""

    event: ObjectEvent
    document: ImageDocument | None = None
    image: DecodedImage | None = None
    error: Exception | None = None
    data: bytes | None = None  # the original file, kept only for recognizers that read it
    plan: Plan | None = None  # what the image is analysed with (None: nothing to analyse)
    #: (face index, embedding) of its faces, made by the plan's face recognition
    embedded: list[tuple[int, np.ndarray]] = field(default_factory=list)


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
        wanted = recognise.versions_for(services.settings, {r.name: r.version for r in recognizers})
        self.people = recognise.FaceRecognition.from_settings(services.settings) if wanted else None
        self.plan = Plan(tuple(self.recognizers), tuple(self.enrichers), self.people)
        self.analyzed_with = self.plan.versions
        self.inference_seconds = 0.0
        # plans reprocess events asked for, by what they asked (a handful: one per settings
        # that ran `imagedex reprocess`), and the analyzers built for them
        self._plans: dict[tuple[tuple[str, str], ...], Plan | UnsupportedWorkError] = {}
        self._built: dict[str, tuple[Recognizer | None, Enricher | None]] = {}
        self._plans_lock = threading.Lock()
        self.label_book = LabelBook(services.settings.data_dir)  # corrections, taught labels

    def plan_for(self, event: ObjectEvent) -> Plan:
        """The worker's own plan, or exactly the analyzers and versions the event asks for
        (built from the registry when this worker's settings do not enable them);
        UnsupportedWorkError when it cannot provide one of them."""
        if event.analyzers is None:
            return self.plan
        with self._plans_lock:
            if event.analyzers not in self._plans:
                if len(self._plans) >= 64:
                    self._plans.clear()
                try:
                    self._plans[event.analyzers] = self._plan(event.analyzers)
                except UnsupportedWorkError as exc:
                    self._plans[event.analyzers] = exc
            found = self._plans[event.analyzers]
        if isinstance(found, UnsupportedWorkError):
            raise found
        return found

    def _plan(self, wanted: tuple[tuple[str, str], ...]) -> Plan:
        recognizers: list[Recognizer] = []
        enrichers: list[Enricher] = []
        problems: list[str] = []
        recognition: recognise.FaceRecognition | None = None
        for name, version in wanted:
            if name == recognise.NAME:
                if version != recognise.VERSION:
                    problems.append(
                        f"{name} version {version} (this worker has {recognise.VERSION})"
                    )
                elif recognise.FACES_ANALYZER not in dict(wanted):
                    problems.append(f"{name} (it needs the {recognise.FACES_ANALYZER} analyzer)")
                else:
                    recognition = self.people or recognise.FaceRecognition.from_settings(
                        self.services.settings
                    )
                continue
            try:
                recognizer, enricher = self._step(name)
            except Exception as exc:  # an analyzer this worker cannot build
                problems.append(f"{name} ({describe(exc)})")
                continue
            step = recognizer or enricher
            if step is None:
                problems.append(f"{name} (no such analyzer here)")
            elif step.version != version:
                problems.append(f"{name} version {version} (this worker has {step.version})")
            elif recognizer is not None:
                recognizers.append(recognizer)
            elif enricher is not None:
                enrichers.append(enricher)
        if problems:
            raise UnsupportedWorkError(
                "this worker cannot run what the reprocess asked for: "
                f"{'; '.join(problems)}; run it where those analyzers are installed"
            )
        return Plan(tuple(recognizers), tuple(enrichers), recognition)

    def _step(self, name: str) -> tuple[Recognizer | None, Enricher | None]:
        """The recognizer or the enricher called `name`: the worker's own, else one built for
        its settings (once)."""
        for recognizer in self.recognizers:
            if recognizer.name == name:
                return recognizer, None
        for enricher in self.enrichers:
            if enricher.name == name:
                return None, enricher
        if name not in self._built:
            settings = self.services.settings
            extra = build_recognizer(settings, name)
            self._built[name] = (extra, None if extra else build_enricher(settings, name))
        return self._built[name]

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
        plan = self.plan_for(event)  # before any fetch: work this worker cannot do is refused
        limit = self.services.settings.max_upload_bytes
        try:
            info = _reading(event.key, lambda: store.head(event.key))
        except ObjectNotFoundError:
            return Item(ObjectEvent("removed", event.bucket, event.key))  # deleted since
        if info.size > limit:  # from its size alone: nothing downloaded
            raise ObjectTooLargeError.of(info.key, info.size, limit)
        doc_id = document_id(info.bucket, info.key)
        title = clean_title(info.metadata.get("title") or "") or clean_title(
            posixpath.basename(info.key)
        )
        existing = self.services.index.get(doc_id)
        if (
            existing is not None
            and not event.force
            and existing.etag == info.etag
            and existing.title == title
            and existing.analyzed_with == plan.versions
        ):
            return Item(event)  # a repeated delivery of an indexed version: nothing to do
        try:
            data = _reading(event.key, lambda: store.read(event.key, limit))
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
            # on the timeline; a new version of the object is a new ingestion (set with
            # analyzed_at when the analysis is done)
            ingested_at=(
                existing.ingested_at
                if existing is not None and existing.etag == info.etag and existing.ingested_at
                else ""
            ),
            analyzed_with=plan.versions,
            phash=dhash(decoded.image),
        )
        kept = data if plan.reads_original else None
        return Item(event, document=document, image=decoded, data=kept, plan=plan)

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
        analysed = [i for p in writable for i in p.items if i.document is not None]
        documents = [i.document for i in analysed if i.document is not None]
        floor = self.services.settings.min_confidence
        analyzed_at = now_iso()
        for document in documents:
            document.labels = finish_labels(document.labels, floor)
            document.analyzed_at = analyzed_at
            document.ingested_at = document.ingested_at or analyzed_at
        self.label_book.apply(documents)  # after the floor: see custom/apply.py
        try:
            self._enrich(analysed)
            regrouped = self._record_people(analysed)
            if documents:
                self.services.index.upsert(documents)
            removed = [
                document_id(item.event.bucket, item.event.key)
                for prepared in writable
                for item in prepared.items
                if item.event.kind == "removed"
            ]
            for doc_id in removed:
                self.services.index.delete(doc_id)
            recognise.forget_documents(self.services.settings.data_dir, removed)
            recognise.sync(self.services.settings.data_dir, self.services.index, regrouped)
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

    def _record_people(self, items: Sequence[Item]) -> set[str]:
        """Each analysed image's faces among people: those embedded during recognition, or none
        (its stored ones removed) when its plan had no face recognition; the other documents
        whose faces gained a person meanwhile."""
        recorded: dict[int, list[tuple[ImageDocument, list[tuple[int, np.ndarray]]]]] = {}
        steps: dict[int, recognise.FaceRecognition] = {}
        without: list[str] = []
        for item in items:
            doc = item.document
            assert doc is not None
            step = item.plan.people if item.plan else None
            if step is None:
                without.append(doc.id)
                continue
            steps[id(step)] = step
            recorded.setdefault(id(step), []).append((doc, item.embedded))
        recognise.forget_documents(self.services.settings.data_dir, without)
        regrouped: set[str] = set()
        for key, documents in recorded.items():
            regrouped |= steps[key].record(documents)
        return regrouped

    def _after_indexed(self, documents: Sequence[ImageDocument]) -> None:
        """Alert rules and other hooks: their failures are logged, never an ingestion error."""
        if not documents:
            return
        for hook in self.services.indexed_hooks():
            try:
                hook(documents)
            except Exception as exc:
                log.warning("a hook after indexing failed (%s)", describe(exc))

    def _enrich(self, items: Sequence[Item]) -> None:
        """Fields derived from the recognised ones: description, near-duplicates, embedding
        (each enricher on the documents whose plan has it)."""
        index = self.services.index
        for item in items:
            doc = item.document
            assert doc is not None
            doc.description = describe_image(doc)
            if doc.phash:
                doc.near_duplicates = [i for i in index.near_duplicates(doc.phash) if i != doc.id]
        started = time.perf_counter()
        try:
            for enricher in _steps(item.plan.enrichers for item in items if item.plan):
                documents = [
                    i.document for i in items if i.plan and i.plan.runs(enricher) and i.document
                ]
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
        """Run each recognizer on the images whose plan has it. A recognizer that fails on a
        batch is retried image by image, so one bad image cannot fail the others; an image on
        which some (not all) of its recognizers fail is indexed with the others' results and the
        failures recorded in `errors`; an image on which every one fails fails its message
        (retried)."""
        every = [i for p in batch for i in p.items if i.image is not None]
        if not every:
            return
        failures: dict[int, dict[str, Exception]] = {id(i): {} for i in every}
        started = time.perf_counter()
        try:
            for recognizer in _steps(i.plan.recognizers for i in every if i.plan):
                items = [i for i in every if i.plan and i.plan.runs(recognizer)]
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
        for item in every:
            failed = failures[id(item)]
            document = item.document
            if document is None or item.plan is None:
                continue
            if failed and len(failed) == len(item.plan.recognizers):
                item.error = next(iter(failed.values()))
            for name, problem in failed.items():
                document.errors[name] = describe(problem)
                document.analyzed_with.pop(name, None)
            self._embed_faces(item, failed)
            item.image = None  # free the pixels early
            item.data = None

    def _embed_faces(self, item: Item, failed: dict[str, Exception]) -> None:
        """The plan's face recognition on the faces found, while the pixels are still here. A
        failure is recorded like an analyzer's and leaves the other results indexed."""
        step = item.plan.people if item.plan else None
        document = item.document
        if step is None or document is None or item.image is None:
            return
        if recognise.FACES_ANALYZER in failed:  # no faces to embed: retried with the analyzer
            document.analyzed_with.pop(step.name, None)
            return
        started = time.perf_counter()
        try:
            item.embedded = step.embed(item.image.image, document.faces)
        except Exception as exc:
            document.errors[step.name] = describe(exc)
            document.analyzed_with.pop(step.name, None)
        finally:
            self.inference_seconds += time.perf_counter() - started

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


def _reading(key: str, call: Callable[[], T]) -> T:
    """A store call whose failures other than imagedex's own (missing object, bad key, too large)
    mean the store is unreachable: StoreUnavailableError, which pauses the worker."""
    try:
        return call()
    except ImagedexError:
        raise
    except Exception as exc:
        raise StoreUnavailableError(key, exc) from exc


def _steps(plans: Iterable[Sequence[T]]) -> list[T]:
    """The analyzers (or enrichers) of several plans, each once, in their first plan's order."""
    seen: dict[int, T] = {}
    for steps in plans:
        for step in steps:
            seen.setdefault(id(step), step)
    return list(seen.values())


def merge(document: ImageDocument, analysis: Analysis) -> None:
    document.labels.extend(analysis.labels)
    document.faces.extend(analysis.faces)
    document.text.extend(analysis.text)
    document.moderation.extend(analysis.moderation)
    if analysis.embedding is not None:
        document.embedding = analysis.embedding
    if analysis.visual_embedding is not None:
        document.visual_embedding = analysis.visual_embedding
