"""Builds the store, queue, index and recognizers one deployment's settings select."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from imagedex.config import Settings
from imagedex.documents import current_analyzer_name
from imagedex.enrich.base import Enricher, QueryEmbedder
from imagedex.errors import ConfigError
from imagedex.index import SearchIndex, open_index
from imagedex.queue import WorkQueue, open_queue
from imagedex.recognition import ANALYZERS
from imagedex.recognition.base import Recognizer
from imagedex.storage import ObjectStore, open_store


@lru_cache(maxsize=4)
def _clip_model_for(directory: str, threads: int) -> Any:
    from imagedex.recognition.clip import ClipModel

    return ClipModel(directory, threads=threads or None)


def _clip_model(settings: Settings) -> Any:
    """One model shared by the image embedder and the query embedder."""
    return _clip_model_for(settings.clip_model_dir, settings.recognition_threads)


def analyzer_names(settings: Settings) -> list[str]:
    """The analyzers `recognizers` enables, in order, each once (ConfigError for unknown ones:
    the message names the valid ones and the nearest match)."""
    names = [current_analyzer_name(n.strip()) for n in settings.recognizers.split(",") if n.strip()]
    if not names:
        raise ConfigError("no recognizer enabled; set recognizers = 'imagenet'")
    for name in names:
        if name not in ANALYZERS:
            raise ANALYZERS.unknown(name)
    return list(dict.fromkeys(names))


def build_recognizers(settings: Settings) -> list[Recognizer]:
    """The analyzers the settings enable (each class imports here; models load on first use)."""
    recognizers = [
        ANALYZERS.resolve(name).from_settings(settings) for name in analyzer_names(settings)
    ]
    if settings.clip_model_dir:
        from imagedex.recognition.clip import ClipImageEmbedder

        recognizers.append(ClipImageEmbedder(_clip_model(settings)))
    return recognizers


def build_recognizer(settings: Settings, name: str) -> Recognizer | None:
    """The analyzer called `name` as these settings configure it, enabled or not (a reprocess
    started with other settings may ask for it); None when no analyzer has that name."""
    name = current_analyzer_name(name)
    if name not in ANALYZERS:
        return None
    return ANALYZERS.resolve(name).from_settings(settings)


def build_enricher(settings: Settings, name: str) -> Enricher | None:
    """The enricher called `name`, enabled or not (see `build_recognizer`); None if none is."""
    every = build_enrichers(replace(settings, semantic=True, clip_model_dir=""))
    return next((enricher for enricher in every if enricher.name == name), None)


def build_enrichers(settings: Settings) -> list[Enricher]:
    if settings.clip_model_dir or not settings.semantic:
        return []  # with CLIP, the image tower (an analyzer) sets the embedding
    from imagedex.enrich.embedding import TextEmbeddingEnricher
    from imagedex.recognition.text_embedding import TextEmbedder

    return [TextEmbeddingEnricher(TextEmbedder(threads=settings.recognition_threads or None))]


def build_query_embedder(settings: Settings, enrichers: Sequence[Enricher]) -> QueryEmbedder:
    """What turns query text into the images' vector space: CLIP's text tower, or the text
    embedding enricher."""
    if settings.clip_model_dir:
        from imagedex.enrich.embedding import ClipQueryEmbedder

        return ClipQueryEmbedder(_clip_model(settings))
    for enricher in enrichers:
        if isinstance(enricher, QueryEmbedder):
            return enricher
    raise ConfigError("semantic search is off (set semantic = true and reprocess)")


@dataclass
class Services:
    """The parts of one deployment. The index opens on first use, so commands that only upload
    work while a remote search engine is down."""

    settings: Settings
    store: ObjectStore
    queue: WorkQueue
    _index: SearchIndex | None = field(default=None, repr=False)
    _recognizers: list[Recognizer] | None = field(default=None, repr=False)
    _enrichers: list[Enricher] | None = field(default=None, repr=False)
    _indexed_hooks: list[Callable[[Sequence[Any]], None]] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        from imagedex.ingest import pixel_budget

        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # one budget per process for decoded pixels, shared by the worker and thumbnails
        pixel_budget.configure(settings.decode_memory_mb)
        return cls(
            settings=settings,
            store=open_store(settings.store_url),
            queue=open_queue(settings.queue, settings.data_dir, settings.max_receive_count),
        )

    @property
    def index(self) -> SearchIndex:
        with self._lock:
            if self._index is None:
                self._index = open_index(self.settings.index, self.settings.data_dir, self.settings)
            return self._index

    def recognizers(self) -> list[Recognizer]:
        with self._lock:
            if self._recognizers is None:
                self._recognizers = build_recognizers(self.settings)
            return self._recognizers

    def enrichers(self) -> list[Enricher]:
        with self._lock:
            if self._enrichers is None:
                self._enrichers = build_enrichers(self.settings)
            return self._enrichers

    def indexed_hooks(self) -> list[Callable[[Sequence[Any]], None]]:
        """Called with each batch of documents right after it is indexed (alert rules)."""
        with self._lock:
            if self._indexed_hooks is None:
                from imagedex.alerts.evaluate import ImageRuleHook

                self._indexed_hooks = [ImageRuleHook(self.settings)]
            return self._indexed_hooks

    def query_embedder(self) -> QueryEmbedder:
        """What turns query text into the same vector space as the images."""
        return build_query_embedder(self.settings, self.enrichers())

    def close(self) -> None:
        self.queue.close()
        if self._index is not None:
            self._index.close()
