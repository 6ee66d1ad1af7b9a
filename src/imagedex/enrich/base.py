"""The enricher protocol: derives document fields from the other fields, after recognition."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from imagedex.documents import ImageDocument


class Enricher(Protocol):
    name: str
    version: str

    def enrich(self, documents: Sequence[ImageDocument]) -> None:
        """Set derived fields in place (e.g. `embedding`)."""
        ...


@runtime_checkable
class QueryEmbedder(Protocol):
    """Embeds query text into the space of the images' `embedding` (semantic search)."""

    def embed_query(self, text: str) -> list[float]: ...
