"""Builds the store, queue, index and recognizers one deployment's settings select."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from imagedex.config import Settings
from imagedex.enrich.base import Enricher
from imagedex.errors import ConfigError
from imagedex.index import SearchIndex, open_index
from imagedex.queue import WorkQueue, open_queue
from imagedex.recognition.base import Recognizer
from imagedex.storage import ObjectStore, open_store


def _imagenet(settings: Settings) -> Recognizer:
    from imagedex.recognition.imagenet import ImageNetLabeller

    return ImageNetLabeller(
        min_confidence=settings.min_confidence,
        max_labels=settings.max_labels,
        threads=settings.recognition_threads or None,
    )


def _moderation(settings: Settings) -> Recognizer:
    from imagedex.recognition.moderation import ModerationAnalyzer

    return ModerationAnalyzer(threads=settings.recognition_threads or None)


def _faces(_settings: Settings) -> Recognizer:
    from imagedex.recognition.faces import FaceAnalyzer

    return FaceAnalyzer()


def _people(_settings: Settings) -> Recognizer:
    from imagedex.recognition.people import PeopleAnalyzer

    return PeopleAnalyzer()


def _ocr(_settings: Settings) -> Recognizer:
    from imagedex.recognition.ocr import TextAnalyzer

    return TextAnalyzer()


def _rekognition(settings: Settings) -> Recognizer:
    from imagedex.recognition.rekognition import RekognitionRecognizer

    return RekognitionRecognizer(
        min_confidence=settings.rekognition_min_confidence,
        max_labels=settings.rekognition_max_labels,
        moderation=settings.rekognition_moderation,
    )


RECOGNIZERS: dict[str, Callable[[Settings], Recognizer]] = {
    "imagenet": _imagenet,
    "moderation": _moderation,
    "faces": _faces,
    "people": _people,
    "ocr": _ocr,
    "rekognition": _rekognition,
}


@lru_cache(maxsize=4)
def _clip_model_for(directory: str, threads: int) -> Any:
    from imagedex.recognition.clip import ClipModel

    return ClipModel(directory, threads=threads or None)


def _clip_model(settings: Settings) -> Any:
    """One model shared by the image embedder and the query embedder."""
    return _clip_model_for(settings.clip_model_dir, settings.recognition_threads)


def build_recognizers(settings: Settings) -> list[Recognizer]:
    """The analyzers the settings enable (imports are local: models load only when needed)."""
    names = [n.strip() for n in settings.recognizers.split(",") if n.strip()]
    extra: list[Recognizer] = []
    if settings.clip_model_dir:
        from imagedex.recognition.clip import ClipImageEmbedder

        extra.append(ClipImageEmbedder(_clip_model(settings)))
    unknown = [n for n in names if n not in RECOGNIZERS]
    if unknown:
        raise ConfigError(
            f"unknown recognizer(s) {', '.join(unknown)}; choose from {', '.join(RECOGNIZERS)}"
        )
    if not names:
        raise ConfigError("no recognizer enabled; set recognizers = 'imagenet'")
    return [RECOGNIZERS[name](settings) for name in dict.fromkeys(names)] + extra


def build_enrichers(settings: Settings) -> list[Enricher]:
    if settings.clip_model_dir:  # the CLIP image tower embeds images; its text tower, queries
        from imagedex.enrich.embedding import ClipQueryEmbedder

        return [ClipQueryEmbedder(_clip_model(settings))]
    if not settings.semantic:
        return []
    from imagedex.enrich.embedding import TextEmbeddingEnricher
    from imagedex.recognition.text_embedding import TextEmbedder

    return [TextEmbeddingEnricher(TextEmbedder(threads=settings.recognition_threads or None))]


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
        settings.data_dir.mkdir(parents=True, exist_ok=True)
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

                self._indexed_hooks = [ImageRuleHook(self)]
            return self._indexed_hooks

    def query_embedder(self) -> Any:
        """The enricher that turns query text into the same vector space as the images."""
        embedders = [e for e in self.enrichers() if hasattr(e, "embed_query")]
        if not embedders:
            raise ConfigError("semantic search is off (set semantic = true and reprocess)")
        return embedders[0]

    def close(self) -> None:
        self.queue.close()
        if self._index is not None:
            self._index.close()
