"""The SearchIndex protocol: one query model, the same answers on every backend."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

from imagedex.documents import Facets, ImageDocument, LabelCount, SearchQuery, SearchResult


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

    def top_labels(
        self, limit: int = 20, min_confidence: float = 0.0, parents: bool = False
    ) -> list[LabelCount]:
        """Images per label, most first: leaf labels (no other label of the image has them as
        a parent), or with `parents` every stored label."""
        ...

    def facets(self, query: SearchQuery, labels: int = 20, interval: str = "day") -> Facets:
        """Counts over the documents matching the query's filters (text, labels,
        min_confidence, dates, moderation); a vector is ignored, it ranks without filtering.
        `labels`: the most common leaf labels (as stored, not parents) at or above
        min_confidence, in images; `over_time`: images per UTC `interval` (minute, hour, day,
        week from Monday, month), without gaps, widened to the query's date range; `confidence`:
        images per 10-point bucket of their best label's confidence; `moderation`: safe/unsafe
        at the query's unsafe_threshold and the moderation labels at or above it.
        ValueError for an unknown interval or more than 10,000 time buckets."""
        ...

    def top_people(
        self, query: SearchQuery, limit: int = 10, exclude: Sequence[int] = ()
    ) -> list[tuple[int, int]]:
        """(person id, images) for the people on the most documents matching the query's
        filters (their faces' `person_id`), most first, ties by id; `exclude`: ids left out
        (hidden people). A vector is ignored, as in `facets`."""
        ...

    def count(self) -> int: ...

    def near_duplicates(self, phash: str, limit: int = 20) -> list[str]:
        """Ids of documents whose perceptual hash is within the near-duplicate distance."""
        ...

    def iter_documents(self, batch: int = 500) -> Iterable[ImageDocument]:
        """Every document, in a stable order (for copies and migrations)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class MigratableIndex(Protocol):
    """An index that can rebuild itself with the current mapping behind its alias
    (OpenSearch/Elasticsearch; the SQLite index migrates its schema when it opens)."""

    def migrate(self, on_progress: Callable[[int], None] | None = None) -> dict[str, Any]: ...
