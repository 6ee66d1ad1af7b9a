"""The SearchIndex protocol: one query model, the same answers on every backend."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from imagedex.documents import ImageDocument, LabelCount, SearchQuery, SearchResult


class SearchIndex(Protocol):
    def upsert(self, documents: Sequence[ImageDocument]) -> None:
        """Insert or replace documents by id (idempotent: the same document twice is one)."""
        ...

    def delete(self, doc_id: str) -> bool:
        """Remove a document; False if it was not there."""
        ...

    def get(self, doc_id: str) -> ImageDocument | None: ...

    def find_by_title(self, title: str, limit: int = 10) -> list[ImageDocument]: ...

    def search(self, query: SearchQuery) -> SearchResult: ...

    def top_labels(self, limit: int = 20, min_confidence: float = 0.0) -> list[LabelCount]: ...

    def count(self) -> int: ...

    def iter_documents(self, batch: int = 500) -> Iterable[ImageDocument]:
        """Every document, in a stable order (for copies and migrations)."""
        ...

    def close(self) -> None: ...
