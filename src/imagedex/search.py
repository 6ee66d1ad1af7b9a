"""Search and label answers in the one JSON shape the CLI and the HTTP API both print."""

from __future__ import annotations

from typing import Any

from imagedex.documents import ImageDocument, SearchQuery
from imagedex.services import Services


def content_url(doc: ImageDocument) -> str:
    """Where a client fetches the image: the API's content route (it redirects for S3)."""
    return f"/api/images/{doc.id}/content"


def search_json(services: Services, query: SearchQuery) -> dict[str, Any]:
    result = services.index.search(query)
    return {
        "total": result.total,
        "limit": query.limit,
        "offset": query.offset,
        "hits": [doc.to_hit(url=content_url(doc)) for doc in result.documents],
    }


def labels_json(services: Services, top: int, min_confidence: float = 0.0) -> dict[str, Any]:
    counts = services.index.top_labels(limit=top, min_confidence=min_confidence)
    return {"labels": [{"label": c.label, "count": c.count} for c in counts]}


def document_json(doc: ImageDocument) -> dict[str, Any]:
    data = doc.to_dict()
    data["url"] = content_url(doc)
    return data


def resolve_document(services: Services, title_or_id: str) -> ImageDocument | None:
    """An id, else the newest document with that exact title (case-insensitive), else a key."""
    doc = services.index.get(title_or_id)
    if doc is not None:
        return doc
    by_title = services.index.find_by_title(title_or_id, limit=1)
    if by_title:
        return by_title[0]
    from imagedex.documents import document_id

    return services.index.get(document_id(services.store.bucket, title_or_id))
