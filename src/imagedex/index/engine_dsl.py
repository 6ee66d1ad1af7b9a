"""The query model as OpenSearch/Elasticsearch query DSL, built structurally.

User text only ever becomes the *value* of a `multi_match` or `term` clause; it is never parsed
as query syntax (no query_string) and never reaches a script.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from imagedex.documents import (
    VECTOR_FIELDS,
    Facets,
    LabelCount,
    ModerationCounts,
    SearchQuery,
)
from imagedex.index import facets as shape

MAPPING_VERSION = 2  # 2: faces nested, with person ids (person search)
MIN_SIMILARITY = 0.2  # as the SQLite index: weaker "matches" are noise
TEXT_FIELDS = ["title", "label_text", "text"]
# Fields imagedex derives for the engine alone; never part of a returned document.
INTERNAL_FIELDS = ("label_text", "phash_bands", "max_confidence")
HIT_SOURCE = {"excludes": [*INTERNAL_FIELDS, *VECTOR_FIELDS]}  # search hits need no vectors
#: A vector field kept in `_source` only (an engine without vector search).
STORED_VECTOR = {"type": "float", "index": False, "doc_values": False}


#: Faces as nested objects, so `person:` matches a face's person id. Only the person id is
#: searched; box, confidence and keypoints are kept in `_source`, and keys a plugin analyzer adds
#: are kept without being mapped (`dynamic: false` inside the document's strict mapping).
FACES: dict[str, Any] = {
    "type": "nested",
    "dynamic": False,
    "properties": {
        "person_id": {"type": "long"},
        "confidence": {"type": "float", "index": False},
        "bbox": {"type": "object", "enabled": False},
        "landmarks": {"type": "object", "enabled": False},
    },
}
#: A person reference (an id or a name, as typed) to the person ids it names.
PersonResolver = Callable[[str], list[int]]


def person_ids(reference: str) -> list[int]:
    """Without a people store, only a numeric reference names a person."""
    digits = reference.strip().removeprefix("#")
    return [int(digits)] if digits.isascii() and digits.isdigit() and len(digits) <= 18 else []


def person_clause(ids: list[int]) -> dict[str, Any]:
    """Images with a face of any of these people (none: a reference naming nobody)."""
    if not ids:
        return {"match_none": {}}
    return {"nested": {"path": "faces", "query": {"terms": {"faces.person_id": ids}}}}


def index_settings(replicas: int = 0, shards: int = 1) -> dict[str, Any]:
    return {
        "number_of_shards": shards,
        "number_of_replicas": replicas,
        "analysis": {
            "normalizer": {"folded": {"type": "custom", "filter": ["lowercase", "asciifolding"]}},
            "analyzer": {
                "folded": {
                    "type": "custom",
                    "tokenizer": "standard",
                    "filter": ["lowercase", "asciifolding"],
                }
            },
        },
    }


def _keyword() -> dict[str, Any]:
    return {"type": "keyword", "normalizer": "folded"}


def _scored_labels(**more: dict[str, Any]) -> dict[str, Any]:
    """Nested (label, confidence, ...) objects, so that a label and its confidence match together;
    `label.raw` keeps the exact spelling for aggregations."""
    return {
        "type": "nested",
        "properties": {
            "label": {**_keyword(), "fields": {"raw": {"type": "keyword"}}},
            "confidence": {"type": "float"},
            **more,
        },
    }


def mappings(
    vector_field: dict[str, Any] | None, visual_field: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The document of DESIGN.md. `labels` is nested so label and confidence match together.
    `vector_field` / `visual_field`: the engine's k-NN mapping of `embedding` (text) and
    `visual_embedding` (how the image looks); None keeps that vector in `_source` only."""
    properties: dict[str, Any] = {
        "id": {"type": "keyword"},
        "title": {"type": "text", "analyzer": "folded", "fields": {"keyword": _keyword()}},
        "s3_location": {"type": "keyword"},
        "bucket": {"type": "keyword"},
        "key": {"type": "keyword"},
        "etag": {"type": "keyword"},
        "size": {"type": "long"},
        "content_type": {"type": "keyword"},
        "width": {"type": "integer"},
        "height": {"type": "integer"},
        "taken_at": {"type": "date", "ignore_malformed": True},
        "camera": {"type": "keyword"},
        "gps": {"type": "object", "enabled": False},
        "ingested_at": {"type": "date"},
        "analyzed_at": {"type": "date"},
        "analyzed_with": {"type": "object", "enabled": False},
        "labels": _scored_labels(
            parents=_keyword(),
            aliases=_keyword(),
            instances={"type": "object", "enabled": False},
            leaf={"type": "boolean"},  # false: another label of the image has it as a parent
        ),
        "label_text": {"type": "text", "analyzer": "folded"},
        "max_confidence": {"type": "float"},  # the best label's, for the confidence facet
        "faces": FACES,
        "text": {"type": "text", "analyzer": "folded"},
        "moderation": _scored_labels(parent=_keyword()),
        "errors": {"type": "object", "enabled": False},
        "description": {"type": "text", "analyzer": "folded"},
        "phash": {"type": "keyword"},
        "phash_bands": {"type": "keyword"},
        "near_duplicates": {"type": "keyword"},
        "embedding": vector_field or STORED_VECTOR,
        "visual_embedding": visual_field or STORED_VECTOR,
    }
    return {"dynamic": "strict", "properties": properties}


def _label_filter(terms: list[str], min_confidence: float) -> dict[str, Any]:
    """One nested label named any of `terms` (as itself, a parent or an alias): one `terms`
    query per field, so the clause count does not grow with the number of terms (the engines
    refuse a query of more than `indices.query.bool.max_clause_count` leaf clauses, 1024 by
    default on OpenSearch)."""
    names = [{"terms": {f"labels.{f}": terms}} for f in ("label", "parents", "aliases")]
    filters: list[dict[str, Any]] = [{"bool": {"should": names, "minimum_should_match": 1}}]
    if min_confidence > 0:  # confidences are 0-100: a range from 0 filters nothing
        filters.append({"range": {"labels.confidence": {"gte": min_confidence}}})
    return {"bool": {"filter": filters}}


def _nested_labels(inner: dict[str, Any], scored: bool) -> dict[str, Any]:
    """Scored: the document scores the best confidence among its matching labels."""
    if scored:
        inner = {
            "function_score": {
                "query": inner,
                "field_value_factor": {"field": "labels.confidence", "missing": 0},
                "boost_mode": "replace",
            }
        }
    return {"nested": {"path": "labels", "query": inner, "score_mode": "max" if scored else "none"}}


def label_clause(terms: list[str], min_confidence: float, scored: bool) -> dict[str, Any]:
    """Images with a label named any of `terms` (lower-cased already); scored: by the best
    confidence among those labels."""
    return _nested_labels(_label_filter(terms, min_confidence), scored)


def text_clause(text: str) -> dict[str, Any] | None:
    if not any(ch.isalnum() for ch in text):
        return None
    return {
        "multi_match": {
            "query": text,
            "type": "bool_prefix",
            "fields": TEXT_FIELDS,
            "operator": "and",
        }
    }


def vector_body(
    query: SearchQuery, flavor: str, people: PersonResolver = person_ids, rescore: bool = True
) -> dict[str, Any]:
    """Nearest neighbours of `query.vector` in `query.vector_field` among the documents the
    query's other filters match (the filter runs inside the graph search, so the `k` nearest
    are found among them, not cut from an unfiltered top k). The graph holds quantised vectors,
    so its scores are estimates; `rescore` recomputes the candidates' scores from the float
    vectors kept beside them, which gives SQLite's exact cosine order (OpenSearch: the k-NN
    plugin's `knn_score` script, no Painless; Elasticsearch 8.18+: `rescore_vector`)."""
    import dataclasses

    filtered = search_body(dataclasses.replace(query, vector=None, exclude_id=""), people)["query"]
    if query.exclude_id:
        filtered["bool"]["must_not"].append({"ids": {"values": [query.exclude_id]}})
    k = min(10_000, max(query.offset + query.limit, 1000))
    vector = [float(x) for x in query.vector or ()]
    body: dict[str, Any] = {
        "from": query.offset,
        "size": query.limit,
        "track_total_hits": True,
        "_source": HIT_SOURCE,
    }
    field = query.vector_field
    if field not in VECTOR_FIELDS:  # SearchQuery checks it too; never a field from elsewhere
        raise ValueError(f"no vector field {field!r}")
    if flavor == "elasticsearch":
        body["knn"] = {
            "field": field,
            "query_vector": vector,
            "k": k,
            "num_candidates": max(k, 100),
            "filter": filtered,
            "similarity": MIN_SIMILARITY,
        }
        if rescore:  # the k candidates rescored from their floats, none more gathered
            body["knn"]["rescore_vector"] = {"oversample": 1.0}
        return body
    body["query"] = {"knn": {field: {"vector": vector, "k": k, "filter": filtered}}}
    body["min_score"] = (1 + MIN_SIMILARITY) / 2  # Lucene cosine score = (1 + cos) / 2
    if rescore:
        exact = {
            "lang": "knn",
            "source": "knn_score",
            "params": {"field": field, "query_value": vector, "space_type": "cosinesimil"},
        }
        body["rescore"] = {
            # the page's hits are among the best 2x estimates (the int7 error is ~1e-3 of
            # cosine); rescoring all k by script doubled a query's time on OpenSearch 2.19
            "window_size": min(k, max(100, 2 * (query.offset + query.limit))),
            "query": {
                "query_weight": 0.0,  # the estimate is replaced, not added to
                "rescore_query_weight": 1.0,
                "rescore_query": {"script_score": {"query": {"match_all": {}}, "script": exact}},
            },
        }
    return body


def search_body(query: SearchQuery, people: PersonResolver = person_ids) -> dict[str, Any]:
    """The query's filters and order as a search request; `people` resolves `query.people`."""
    must: list[dict[str, Any]] = []
    filters: list[dict[str, Any]] = []
    terms = list(dict.fromkeys(t for t in (t.strip().lower() for t in query.labels) if t))
    if terms and query.match_all_labels:
        # every label must match, each its own nested label: one nested clause per label
        # (about 4 leaf clauses each, so some 250 labels fit OpenSearch's default limit)
        must.append(label_clause(terms[:1], query.min_confidence, scored=True))
        filters += [label_clause([t], query.min_confidence, scored=False) for t in terms[1:]]
    elif terms:
        # any label: one nested clause whatever their number; scored by the best confidence
        # among the matching labels, as a dis_max of one clause per label would be
        must.append(label_clause(terms, query.min_confidence, scored=True))
    elif query.min_confidence > 0:
        inner = {"range": {"labels.confidence": {"gte": query.min_confidence}}}
        must.append(_nested_labels(inner, scored=True))
    text = text_clause(query.text) if query.text else None
    if text is not None:  # text without a word in it (only punctuation) is no text filter
        (filters if must else must).append(text)
    must_not: list[dict[str, Any]] = []
    if query.moderation:
        unsafe = _unsafe_clause(query.unsafe_threshold)
        (filters if query.moderation == "unsafe" else must_not).append(unsafe)
    dates = {k: v for k, v in (("gte", query.date_from), ("lt", query.date_to)) if v}
    if dates:
        filters.append({"range": {"ingested_at": dates}})
    # every person must show (any of the people a name names)
    filters += [person_clause(people(ref)) for ref in dict.fromkeys(query.people)]
    bool_query: dict[str, Any] = {
        "must": must or [{"match_all": {}}],
        "filter": filters,
        "must_not": must_not,
    }
    sort = {
        "relevance": ["_score", {"ingested_at": "desc"}, {"id": "asc"}],
        "newest": [{"ingested_at": "desc"}, {"id": "asc"}],
        "oldest": [{"ingested_at": "asc"}, {"id": "asc"}],
        "title": [{"title.keyword": "asc"}, {"id": "asc"}],
    }[query.sort]
    return {
        "query": {"bool": bool_query},
        "sort": sort,
        "from": query.offset,
        "size": query.limit,
        "track_total_hits": True,
        "_source": HIT_SOURCE,
    }


def _unsafe_clause(threshold: float) -> dict[str, Any]:
    return {
        "nested": {
            "path": "moderation",
            "query": {"range": {"moderation.confidence": {"gte": threshold}}},
        }
    }


def _names_agg(path: str, size: int, threshold: float, leaves: bool = False) -> dict[str, Any]:
    """Images (not nested rows) per folded name at or above a confidence, most first, with the
    most common spelling as it was stored for display. `leaves`: only labels no other label of
    the image has as a parent (documents indexed before `leaf` existed count every label)."""
    names = {
        "terms": {
            "field": f"{path}.label",
            "size": max(size, 1),
            "shard_size": max(size, 1) * 5 + 100,  # ordered by a sub-count: widen the shards'
            "order": [{"images": "desc"}, {"_key": "asc"}],
        },
        "aggs": {
            "images": {"reverse_nested": {}},  # images, not label rows, are counted
            "display": {"terms": {"field": f"{path}.label.raw", "size": 1}},
        },
    }
    inner: dict[str, Any] = {"names": names}
    conditions: list[dict[str, Any]] = []
    if threshold > 0:
        conditions.append({"range": {f"{path}.confidence": {"gte": threshold}}})
    if leaves:
        conditions.append({"bool": {"must_not": {"term": {f"{path}.leaf": False}}}})
    if conditions:
        inner = {"confident": {"filter": {"bool": {"filter": conditions}}, "aggs": inner}}
    return {"nested": {"path": path}, "aggs": inner}


def _names_from(node: dict[str, Any], size: int) -> list[LabelCount]:
    node = node.get("confident", node)
    rows = []
    for bucket in node["names"]["buckets"][:size]:
        display = bucket["display"]["buckets"]
        count = int(bucket["images"]["doc_count"])
        rows.append(LabelCount(display[0]["key"] if display else bucket["key"], count))
    return rows


def top_labels_body(limit: int, min_confidence: float, parents: bool = False) -> dict[str, Any]:
    aggs = _names_agg("labels", limit, min_confidence, leaves=not parents)
    return {"size": 0, "aggs": {"labels": aggs}}


def top_labels_from(response: dict[str, Any]) -> list[tuple[str, int]]:
    rows = _names_from(response["aggregations"]["labels"], shape.MAX_LABELS * 10)
    return [(c.label, c.count) for c in rows]


def facets_body(
    query: SearchQuery, labels: int, interval: str, people: PersonResolver = person_ids
) -> dict[str, Any]:
    """The query's filters with the facet aggregations; no hits."""
    filtered = search_body(shape.facet_query(query), people)["query"]
    ranges = [{"from": low, "to": low + shape.CONFIDENCE_STEP} for low in shape.CONFIDENCE_LOWS]
    ranges[-1] = {"from": shape.CONFIDENCE_LOWS[-1]}  # 100 itself belongs to the last bucket
    return {
        "size": 0,
        "track_total_hits": True,
        "query": filtered,
        "aggs": {
            "labels": _names_agg("labels", labels, query.min_confidence, leaves=True),
            "over_time": {
                "date_histogram": {
                    "field": "ingested_at",
                    "calendar_interval": interval,
                    "time_zone": "UTC",
                    "min_doc_count": 1,  # gaps are filled the same way for every backend
                }
            },
            "confidence": {"range": {"field": "max_confidence", "ranges": ranges}},
            "unsafe": {"filter": _unsafe_clause(query.unsafe_threshold)},
            "moderation": _names_agg("moderation", shape.MODERATION_LABELS, query.unsafe_threshold),
        },
    }


def top_people_body(
    query: SearchQuery, limit: int, exclude: Sequence[int], people: PersonResolver = person_ids
) -> dict[str, Any]:
    """Images (not faces) per person id among the documents the query's filters match."""
    filtered = search_body(shape.facet_query(query), people)["query"]
    shown: dict[str, Any] = {"filter": [{"exists": {"field": "faces.person_id"}}]}
    if exclude:
        shown["must_not"] = [{"terms": {"faces.person_id": [int(p) for p in exclude]}}]
    terms = {
        "field": "faces.person_id",
        "size": max(limit, 1),
        "shard_size": max(limit, 1) * 5 + 100,  # ordered by a sub-count: widen the shards'
        "order": [{"images": "desc"}, {"_key": "asc"}],
    }
    return {
        "size": 0,
        "query": filtered,
        "aggs": {
            "faces": {
                "nested": {"path": "faces"},
                "aggs": {
                    "shown": {
                        "filter": {"bool": shown},
                        "aggs": {
                            "people": {"terms": terms, "aggs": {"images": {"reverse_nested": {}}}}
                        },
                    }
                },
            }
        },
    }


def top_people_from(response: dict[str, Any], limit: int) -> list[tuple[int, int]]:
    buckets = response["aggregations"]["faces"]["shown"]["people"]["buckets"]
    return [(int(b["key"]), int(b["images"]["doc_count"])) for b in buckets[:limit]]


def facets_from(response: dict[str, Any], query: SearchQuery, labels: int, interval: str) -> Facets:
    aggs = response["aggregations"]
    total = int(response["hits"]["total"]["value"])
    times = {
        datetime.fromtimestamp(b["key"] / 1000, UTC): int(b["doc_count"])
        for b in aggs["over_time"]["buckets"]
    }
    unsafe = int(aggs["unsafe"]["doc_count"])
    return Facets(
        total=total,
        labels=_names_from(aggs["labels"], labels),
        over_time=shape.time_buckets(times, interval, query.date_from, query.date_to),
        confidence=shape.confidence_buckets(
            [int(b["doc_count"]) for b in aggs["confidence"]["buckets"]]
        ),
        moderation=ModerationCounts(
            safe=total - unsafe,
            unsafe=unsafe,
            labels=_names_from(aggs["moderation"], shape.MODERATION_LABELS),
        ),
    )
