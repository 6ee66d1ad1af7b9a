"""Routes: search and label counts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from imagedex.api.deps import ServicesDep, ViewerDep
from imagedex.documents import SearchQuery
from imagedex.errors import ConfigError
from imagedex.search import labels_json, search_json, with_vector

router = APIRouter()


@router.get("/api/search", tags=["search"])
def search(
    services: ServicesDep,
    _who: ViewerDep,
    q: Annotated[str | None, Query(max_length=500, description="free text")] = None,
    label: Annotated[list[str] | None, Query(description="label (repeatable)")] = None,
    min_confidence: Annotated[float, Query(ge=0, le=100)] = 0.0,
    match: Annotated[str, Query(pattern="^(all|any)$")] = "all",
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    sort: Annotated[str, Query(pattern="^(relevance|newest|oldest|title)$")] = "relevance",
    moderation: Annotated[str, Query(pattern="^(|safe|unsafe)$")] = "",
    semantic: Annotated[bool, Query(description="search q by meaning")] = False,
    like: Annotated[str | None, Query(max_length=64, description="similar to image id")] = None,
) -> dict[str, Any]:
    query = SearchQuery(
        text=q,
        labels=tuple(label or ()),
        match_all_labels=match == "all",
        min_confidence=min_confidence,
        limit=limit,
        offset=offset,
        sort=sort,
        moderation=moderation,
    )
    try:
        query = with_vector(services, query, semantic=semantic, like=like)
    except ConfigError as exc:
        raise HTTPException(400, str(exc)) from exc
    return search_json(services, query)


@router.get("/api/labels", tags=["search"])
def labels(
    services: ServicesDep,
    _who: ViewerDep,
    top: Annotated[int, Query(ge=1, le=10_000)] = 50,
    min_confidence: Annotated[float, Query(ge=0, le=100)] = 0.0,
) -> dict[str, Any]:
    return labels_json(services, top, min_confidence)
