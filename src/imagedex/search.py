"""Search and label answers in the one JSON shape the CLI and the HTTP API both print."""

from __future__ import annotations

from typing import Any

from imagedex.documents import ImageDocument, SearchQuery
from imagedex.services import Services


def content_url(doc: ImageDocument) -> str:
    """Where a client fetches the image: the API's content route (it redirects for S3)."""
    return f"/api/images/{doc.id}/content"


def with_vector(
    services: Services, query: SearchQuery, semantic: bool = False, like: str | None = None
) -> SearchQuery:
    """Turn `semantic` (embed the query text) or `like` (an image's own vector) into a vector
    query; the query's other filters still apply.

    `like` compares how images look: the example's `visual_embedding` against the others'
    (so renaming a file never changes its neighbours). An example indexed before visual
    embeddings existed (not yet reprocessed) falls back to its text `embedding`, which
    compares descriptions, labels and titles instead. Either way the example itself is left out.
    """
    import dataclasses

    from imagedex.errors import ConfigError

    if like:
        example = services.index.get(like)
        if example is None:
            raise ConfigError(f"no indexed image with id {like!r} to find similar images to")
        if example.visual_embedding:
            return dataclasses.replace(
                query,
                vector=tuple(example.visual_embedding),
                vector_field="visual_embedding",
                exclude_id=like,
            )
        if not example.embedding:
            raise ConfigError(f"image {like!r} has no embedding yet (reprocess it)")
        return dataclasses.replace(
            query, vector=tuple(example.embedding), vector_field="embedding", exclude_id=like
        )
    if semantic:
        if not query.text:
            raise ConfigError("semantic search needs text to search for")
        vector = services.query_embedder().embed_query(query.text)
        return dataclasses.replace(query, vector=tuple(vector), vector_field="embedding", text=None)
    return query


def search_json(services: Services, query: SearchQuery) -> dict[str, Any]:
    """Search results as the API and `imagedex search --json` give them. A hit never carries a
    path on the server: `s3_location` is left out where the store is a local folder (bucket and
    key name the object; admins see the location on the image's own page)."""
    from imagedex.thumbnails import thumbnail_url

    result = services.index.search(query)
    size = services.settings.thumbnail_size
    hits = []
    for doc in result.documents:
        hit = doc.to_hit(url=content_url(doc))
        hit["thumbnail"] = thumbnail_url(doc.id, doc.etag, size)  # versioned: cached for good
        if doc.s3_location.startswith("file:"):
            del hit["s3_location"]
        hits.append(hit)
    return {
        "total": result.total,
        # true when counting stopped at the query's track_total: there are more matches
        "total_is_lower_bound": result.total_is_lower_bound,
        "limit": query.limit,
        "offset": query.offset,
        "hits": hits,
    }


def facets_json(
    services: Services, query: SearchQuery, labels: int = 20, interval: str = "day"
) -> dict[str, Any]:
    """Facets over the images the query's filters match (a vector, if any, is ignored)."""
    return services.index.facets(query, labels=labels, interval=interval).to_dict()


def labels_json(
    services: Services, top: int, min_confidence: float = 0.0, parents: bool = False
) -> dict[str, Any]:
    """Images per label: leaf labels ("Golden Retriever"), or with `parents` every label
    ("Dog" and "Animal" too)."""
    counts = services.index.top_labels(top, min_confidence, parents)
    return {"labels": [{"label": c.label, "count": c.count} for c in counts]}


def document_json(doc: ImageDocument) -> dict[str, Any]:
    data = doc.to_dict()
    data["url"] = content_url(doc)
    return data


#: How many near-duplicates an image page lists (each is one index lookup).
NEAR_DUPLICATES_SHOWN = 20


def near_duplicate_links(services: Services, doc: ImageDocument) -> list[dict[str, str]]:
    """The indexed images that look almost the same as `doc`, whichever was indexed first.

    Asked of the index now rather than read from `doc.near_duplicates` (which an image gets
    when it is indexed, so only the newer of two holds it, and which keeps deleted ones)."""
    if not doc.phash:
        return []
    links = []
    for other_id in services.index.near_duplicates(doc.phash, NEAR_DUPLICATES_SHOWN + 1):
        other = services.index.get(other_id) if other_id != doc.id else None
        if other is not None:
            links.append({"id": other.id, "title": other.title, "page": f"/images/{other.id}"})
    return links[:NEAR_DUPLICATES_SHOWN]


def with_near_duplicates(
    services: Services, doc: ImageDocument, data: dict[str, Any]
) -> dict[str, Any]:
    """`data` (the document as JSON) with `near_duplicates` (ids) and `near_duplicate_images`
    (id, title, page) as the index knows them now, the same from either image."""
    duplicates = near_duplicate_links(services, doc)
    data["near_duplicates"] = [d["id"] for d in duplicates]
    data["near_duplicate_images"] = duplicates
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
