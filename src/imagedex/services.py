"""Builds the store, queue, index and recognizers one deployment's settings select."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from imagedex.config import Settings
from imagedex.errors import ConfigError
from imagedex.index import SearchIndex, open_index
from imagedex.queue import WorkQueue, open_queue
from imagedex.recognition.base import Recognizer
from imagedex.storage import ObjectStore, open_store


def build_recognizers(settings: Settings) -> list[Recognizer]:
    """The analyzers the settings enable (imports are local: models load only when needed)."""
    names = [n.strip() for n in settings.recognizers.split(",") if n.strip()]
    recognizers: list[Recognizer] = []
    for name in names:
        if name == "imagenet":
            from imagedex.recognition.imagenet import ImageNetLabeller

            recognizers.append(
                ImageNetLabeller(
                    min_confidence=settings.min_confidence,
                    max_labels=settings.max_labels,
                    threads=settings.recognition_threads or None,
                )
            )
        elif name == "rekognition":
            from imagedex.recognition.rekognition import RekognitionRecognizer

            recognizers.append(
                RekognitionRecognizer(
                    min_confidence=settings.rekognition_min_confidence,
                    max_labels=settings.rekognition_max_labels,
                    moderation=settings.rekognition_moderation,
                )
            )
        else:
            raise ConfigError(f"unknown recognizer {name!r}; choose from imagenet, rekognition")
    if not recognizers:
        raise ConfigError("no recognizer enabled; set recognizers = 'imagenet'")
    return recognizers


@dataclass
class Services:
    """The parts of one deployment. The index opens on first use, so commands that only upload
    work while a remote search engine is down."""

    settings: Settings
    store: ObjectStore
    queue: WorkQueue
    _index: SearchIndex | None = field(default=None, repr=False)
    _recognizers: list[Recognizer] | None = field(default=None, repr=False)
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

    def close(self) -> None:
        self.queue.close()
        if self._index is not None:
            self._index.close()
