"""Routes: search (with facets), facets alone for the dashboard, and label counts."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from imagedex.api.deps import ServicesDep, ViewerDep
from imagedex.documents import SearchQuery
from imagedex.errors import ConfigError
from imagedex.index.facets import INTERVALS, MAX_LABELS, NEAREST_FACETS, count_documents
from imagedex.index.query_syntax import parse_query
from imagedex.search import facets_json, labels_json, search_json, with_vector
from imagedex.services import Services

router = APIRouter()


def search_filters(
    q: Annotated[
        str | None,
        Query(
            max_length=500,
            description='search box text: words, label:dog, label:"golden retriever", '
            "confidence>=90, after:2026-01-01, before:2026-02-01, safe/unsafe, sort:newest",
        ),
    ] = None,
    label: Annotated[list[str] | None, Query(description="label (repeatable)")] = None,
    min_confidence: Annotated[float, Query(ge=0, le=100)] = 0.0,
    match: Annotated[str, Query(pattern="^(all|any)$")] = "all",
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    sort: Annotated[str, Query(pattern="^(relevance|newest|oldest|title)$")] = "relevance",
    moderation: Annotated[str, Query(pattern="^(|safe|unsafe)$")] = "",
    date_from: Annotated[
        str | None, Query(max_length=40, description="ingested at or after (ISO-8601)")
    ] = None,
    date_to: Annotated[
        str | None, Query(max_length=40, description="ingested before (ISO-8601)")
    ] = None,
    track_total: Annotated[
        int,
        Query(
            ge=0,
            le=1_000_000,
            description="count matches exactly up to this many, then answer this number with"
            " total_is_lower_bound true (0: count every match)",
        ),
    ] = 0,
) -> SearchQuery:
    """The explicit parameters, then `q` in the search box syntax over them (400 when either
    cannot be understood, with the reason)."""
    try:
        base = SearchQuery(
            labels=tuple(label or ()),
            match_all_labels=match == "all",
            min_confidence=min_confidence,
            limit=limit,
            offset=offset,
            sort=sort,
            moderation=moderation,
            date_from=date_from or None,
            date_to=date_to or None,
            track_total=track_total,
        )
        return parse_query(q, base) if q else base
    except ValueError as exc:  # QuerySyntaxError is one
        raise HTTPException(400, str(exc)) from exc


FiltersDep = Annotated[SearchQuery, Depends(search_filters)]
IntervalParam = Annotated[str, Query(pattern=f"^({'|'.join(INTERVALS)})$")]


@router.get("/api/search", tags=["search"])
def search(
    services: ServicesDep,
    _who: ViewerDep,
    query: FiltersDep,
    semantic: Annotated[bool, Query(description="search q's words by meaning")] = False,
    like: Annotated[
        str | None, Query(max_length=64, description="images that look like this image id")
    ] = None,
    facets: Annotated[bool, Query(description="add facets over the matching images")] = False,
    facet_labels: Annotated[int, Query(ge=0, le=MAX_LABELS)] = 20,
    interval: IntervalParam = "day",
) -> dict[str, Any]:
    try:
        vector_query = with_vector(services, query, semantic=semantic, like=like)
    except ConfigError as exc:
        raise HTTPException(400, str(exc)) from exc
    answer = search_json(services, vector_query)
    if facets:
        if vector_query.vector is None:
            answer["facets"] = _facets(services, vector_query, facet_labels, interval)
        else:
            answer["facets"] = _nearest_facets(services, vector_query, facet_labels, interval)
    return answer


def _nearest_facets(
    services: Services, query: SearchQuery, labels: int, interval: str
) -> dict[str, Any]:
    """Facets of a semantic or "more like this" search: over the images it finds (at most the
    NEAREST_FACETS closest), not over every image its filters allow. `counted` says how many
    were counted when the matches are more than that."""
    nearest = dataclasses.replace(query, limit=NEAREST_FACETS, offset=0)
    found = services.index.search(nearest)
    try:
        counts = count_documents(found.documents, query, labels, interval).to_dict()
    except ValueError as exc:  # e.g. too many time buckets for the interval
        raise HTTPException(400, str(exc)) from exc
    counts["counted"] = len(found.documents)
    return counts


@router.get("/api/facets", tags=["search"])
def facets(
    services: ServicesDep,
    _who: ViewerDep,
    query: FiltersDep,
    labels: Annotated[int, Query(ge=0, le=MAX_LABELS, description="top labels to count")] = 20,
    interval: IntervalParam = "day",
) -> dict[str, Any]:
    """Counts over the images the filters match: labels, images over time, best-label
    confidence, moderation (the dashboard's data)."""
    return _facets(services, query, labels, interval)


def _facets(services: Services, query: SearchQuery, labels: int, interval: str) -> dict[str, Any]:
    try:
        return facets_json(services, query, labels, interval)
    except ValueError as exc:  # e.g. too many time buckets for the interval
        raise HTTPException(400, str(exc)) from exc


@router.get("/api/labels", tags=["search"])
def labels(
    services: ServicesDep,
    _who: ViewerDep,
    top: Annotated[int, Query(ge=1, le=10_000)] = 50,
    min_confidence: Annotated[float, Query(ge=0, le=100)] = 0.0,
    parents: Annotated[
        bool, Query(description="Count broader labels too (Dog, Animal), not only leaf labels.")
    ] = False,
) -> dict[str, Any]:
    return labels_json(services, top, min_confidence, parents)
