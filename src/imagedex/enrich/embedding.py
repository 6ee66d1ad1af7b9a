"""The text embedding of each image, for semantic and "more like this" search.

No image+text model ships offline, so an image is embedded through words: its title, its
description, its labels with their parents, and any text read from it, embedded with the
packaged MiniLM sentence model. A user-supplied CLIP model can replace this (see clip.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from imagedex.documents import ImageDocument
from imagedex.recognition.clip import ClipModel
from imagedex.recognition.text_embedding import TextEmbedder

MAX_TEXT_LINES = 5


def embedding_text(doc: ImageDocument) -> str:
    """What the image is about, in words, most telling first."""
    labels = sorted(doc.labels, key=lambda lb: -lb.confidence)
    names: list[str] = []
    for label in labels:
        for name in (label.label, *label.parents[:3]):
            if name.lower() not in (n.lower() for n in names):
                names.append(name)
    parts = [doc.description or "", ", ".join(names), doc.title.rsplit(".", 1)[0]]
    parts += [line for line in doc.text[:MAX_TEXT_LINES]]
    return ". ".join(p for p in parts if p)


class TextEmbeddingEnricher:
    name = "embedding-minilm"
    version = "1"

    def __init__(self, embedder: TextEmbedder | None = None) -> None:
        self.embedder = embedder or TextEmbedder()
        self.version = f"{self.embedder.name}-{self.embedder.version}"

    def embed_query(self, text: str) -> list[float]:
        return [float(x) for x in self.embedder.embed([text])[0]]

    def enrich(self, documents: Sequence[ImageDocument]) -> None:
        if not documents:
            return
        vectors = self.embedder.embed([embedding_text(doc) for doc in documents])
        for doc, vector in zip(documents, vectors, strict=True):
            doc.embedding = [float(x) for x in vector]


class ClipQueryEmbedder:
    """With a user-supplied CLIP model, images are embedded by its image tower (an analyzer)
    and query text by its text tower, so "a dog on a beach" meets the pixels directly."""

    def __init__(self, model: ClipModel) -> None:
        self.model = model

    def embed_query(self, text: str) -> list[float]:
        return [float(x) for x in self.model.embed_texts([text])[0]]
