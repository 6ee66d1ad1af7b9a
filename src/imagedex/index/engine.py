"""The OpenSearch / Elasticsearch search index, behind a versioned index and an alias.

`images` (the alias) points at `images-v<N>`; a mapping change creates `images-v<N+1>`, copies the
documents across and swaps the alias atomically (`imagedex index migrate`), so searches never see
a half-built index.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any, Literal

import numpy as np

from imagedex.documents import (
    Facets,
    ImageDocument,
    LabelCount,
    SearchQuery,
    SearchResult,
    leaf_label_names,
)
from imagedex.enrich.phash import NEAR_DUPLICATE_DISTANCE, distance
from imagedex.enrich.phash import bands as phash_bands
from imagedex.errors import ConfigError
from imagedex.index import engine_dsl as dsl
from imagedex.index import facets as shape
from imagedex.index.engine_client import EngineClient, EngineRequestError

log = logging.getLogger("imagedex.index.engine")

Flavor = Literal["opensearch", "elasticsearch"]
BULK_CHUNK = 500
VISUAL_EMBEDDING_DIM = 1280  # the ImageNet model's pooled features
VECTOR_TYPES = ("knn_vector", "dense_vector")


def _engine_document(doc: ImageDocument) -> dict[str, Any]:
    body = doc.to_dict()
    leaves = leaf_label_names(doc.labels)
    for label in body["labels"]:
        label["leaf"] = label["label"].lower() in leaves
    body["label_text"] = doc.label_text()
    body["max_confidence"] = max((lb.confidence for lb in doc.labels), default=None)
    for date in ("taken_at", "analyzed_at"):  # a date field takes null, not ""
        if not body.get(date):
            body[date] = None
    body["phash_bands"] = phash_bands(doc.phash) if doc.phash else []
    if doc.visual_embedding:
        # each value as the shortest text that reads back as the same float32 (what the engine
        # keeps): about 16 KB of `_source` per image instead of 28 KB
        vector = np.asarray(doc.visual_embedding, dtype=np.float32)
        body["visual_embedding"] = [float(str(x)) for x in vector]
    return body


def _from_source(source: dict[str, Any]) -> ImageDocument:
    source = {k: v for k, v in source.items() if k not in dsl.INTERNAL_FIELDS}
    if source.get("visual_embedding"):  # the float32 values written, exactly
        source["visual_embedding"] = np.asarray(
            source["visual_embedding"], dtype=np.float32
        ).tolist()
    return ImageDocument.from_dict(source)


class EngineIndex:
    def __init__(
        self,
        client: EngineClient,
        alias: str,
        flavor: Flavor = "opensearch",
        refresh: str = "wait_for",
        replicas: int | str = 0,
        embedding_dim: int = 384,
        visual_dim: int = VISUAL_EMBEDDING_DIM,
    ) -> None:
        if not alias or alias.startswith(("_", "-")) or alias.lower() != alias:
            raise ValueError(f"invalid index name {alias!r}: lower case, not starting with _ or -")
        self.client = client
        self.alias = alias
        self.flavor = flavor
        self.refresh = refresh
        self.replicas = replicas
        self.embedding_dim = embedding_dim
        self.visual_dim = visual_dim
        #: person references in queries to person ids (open_engine sets the people store's)
        self.resolve_person: dsl.PersonResolver = dsl.person_ids
        self._faces_nested = False
        self.ensure()

    # -- index lifecycle ------------------------------------------------------------------------

    def _engine_version(self) -> tuple[int, int]:
        """The node's (major, minor) version, asked once."""
        cached: tuple[int, int] | None = getattr(self, "_version", None)
        if cached is None:
            number = str((self.client.request("GET", "/") or {}).get("version", {}).get("number"))
            try:
                major, minor = (int(part) for part in number.split(".")[:2])
            except ValueError:
                major, minor = 0, 0
            cached = self._version = (major, minor)
        return cached

    def _detect_vector_field(self, dims: int | None = None) -> dict[str, Any] | None:
        """A searchable vector field of `dims` (default: the text embedding's) where the engine
        has one, else None (stored only). HNSW over quantised vectors wherever the engine offers
        it (the floats are kept too, for exact rescoring): ES `dense_vector` with `bbq_hnsw`
        (9.0+, 384+ dimensions: 1 bit a dimension) or `int8_hnsw` (8.12+: a byte); OpenSearch
        k-NN `knn_vector` on the Lucene engine with the 7-bit `sq` encoder (2.16+) when the k-NN
        plugin is installed. docs/search-engines.md has the recall measured for each."""
        dims = dims or self.embedding_dim
        version = self._engine_version()
        if self.flavor == "elasticsearch":
            field: dict[str, Any] = {
                "type": "dense_vector",
                "dims": dims,
                "index": True,
                "similarity": "cosine",
            }
            if version >= (9, 0) and dims >= 384:  # as ES 9.1+ chooses by default
                field["index_options"] = {"type": "bbq_hnsw"}
            elif version >= (8, 12):
                field["index_options"] = {"type": "int8_hnsw"}
            return field
        plugins = self.client.request("GET", "/_cat/plugins", params={"format": "json"}) or []
        if not any(p.get("component") == "opensearch-knn" for p in plugins):
            return None
        method: dict[str, Any] = {"name": "hnsw", "engine": "lucene", "space_type": "cosinesimil"}
        if version >= (2, 16):
            method["parameters"] = {"encoder": {"name": "sq", "parameters": {"bits": 7}}}
        return {"type": "knn_vector", "dimension": dims, "method": method}

    def _visual_vector_field(self) -> dict[str, Any] | None:
        """`visual_embedding`: the same kind of field with the visual embedding's 1280
        dimensions."""
        return self._detect_vector_field(self.visual_dim)

    def _aliased_indices(self) -> list[str]:
        found = self.client.request("GET", f"/_alias/{self.alias}", allow=(404,))
        return sorted(found or {})

    def _versions(self) -> list[int]:
        found = (
            self.client.request(
                "GET", f"/{self.alias}-v*", params={"expand_wildcards": "open"}, allow=(404,)
            )
            or {}
        )
        versions = []
        for name in found:
            suffix = name.removeprefix(f"{self.alias}-v")
            if suffix.isdigit():
                versions.append(int(suffix))
        return sorted(versions)

    def _create_version(self, version: int) -> str:
        name = f"{self.alias}-v{version}"
        text = self._detect_vector_field()
        visual = self._visual_vector_field() if text else None
        if self.replicas == "auto":
            # 0 replicas on one data node (green), 1 once a second joins, kept by the engine
            settings = {**dsl.index_settings(), "auto_expand_replicas": "0-1"}
        else:
            settings = dsl.index_settings(replicas=int(self.replicas))
        if text and text["type"] == "knn_vector":
            settings["knn"] = True
        self.client.request(
            "PUT",
            f"/{name}",
            {"settings": settings, "mappings": dsl.mappings(text, visual)},
        )
        return name

    def ensure(self) -> None:
        """Create the first versioned index and its alias if neither exists; on an existing
        index, add fields this version of imagedex introduced (additive mapping changes need no
        reindex; incompatible ones are reported with the advice to run `imagedex index migrate`)."""
        if self._aliased_indices():
            self._add_new_fields()
            return
        if self._index_exists(self.alias):
            raise EngineRequestError(
                400, f"{self.alias!r} is a plain index, not an alias; imagedex needs the name free"
            )
        name = f"{self.alias}-v{dsl.MAPPING_VERSION}"
        if not self._index_exists(name):
            try:
                self._create_version(dsl.MAPPING_VERSION)
            except EngineRequestError as exc:
                if "already_exists" not in exc.reason:  # another process won the race
                    raise
        self.client.request(
            "POST", "/_aliases", {"actions": [{"add": {"index": name, "alias": self.alias}}]}
        )

    def _add_new_fields(self) -> None:
        current = self.client.request("GET", f"/{self.alias}/_mapping") or {}
        known: set[str] = set()
        known_labels: set[str] = set()
        for body in current.values():
            properties = body.get("mappings", {}).get("properties", {})
            known |= set(properties)
            labels = properties.get("labels", {})
            if labels.get("type") == "nested":  # an index imagedex made (another tool's: as is)
                known_labels |= set(labels.get("properties", {}))
        wanted = dsl.mappings(None)["properties"]
        missing = {k: v for k, v in wanted.items() if k not in known}
        new_in_labels = {
            k: v for k, v in wanted["labels"]["properties"].items() if k not in known_labels
        }
        if known_labels and new_in_labels:  # a sub-field of the nested labels
            missing["labels"] = {"type": "nested", "properties": new_in_labels}
        if not missing:
            return
        if "visual_embedding" in missing and self._vector_type() in VECTOR_TYPES:
            # the index searches vectors (made with the k-NN plugin, `index.knn` on): the new
            # vector is searchable too, without a reindex
            missing["visual_embedding"] = self._visual_vector_field() or dsl.STORED_VECTOR
        try:
            self.client.request("PUT", f"/{self.alias}/_mapping", {"properties": missing})
        except EngineRequestError as exc:
            raise EngineRequestError(
                exc.status, f"{exc.reason}; run `imagedex index migrate` to rebuild the index"
            ) from exc
        if "analyzed_at" in missing:
            self._fill_analyzed_at()

    def _fill_analyzed_at(self) -> None:
        """Documents from before `analyzed_at` get their `ingested_at` (as SQLite's migration
        does) in a background task of the engine. An engine without the reindex module (no
        `_update_by_query`) leaves them without one until they are next written or
        `imagedex index migrate` copies them."""
        try:
            self.client.request(
                "POST",
                f"/{self.alias}/_update_by_query",
                {
                    "query": {"bool": {"must_not": {"exists": {"field": "analyzed_at"}}}},
                    "script": {
                        "lang": "painless",
                        "source": "ctx._source.analyzed_at = ctx._source.ingested_at",
                    },
                },
                params={"conflicts": "proceed", "wait_for_completion": "false"},
            )
        except EngineRequestError as exc:
            log.info("analyzed_at is not filled in on older documents (%s)", exc.reason)

    def _index_exists(self, name: str) -> bool:
        try:
            self.client.request("HEAD", f"/{name}")
            return True
        except EngineRequestError as exc:
            if exc.status == 404:
                return False
            raise

    def migrate(self, on_progress: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Copy every document into a new versioned index with the current mapping, then
        move the alias in one atomic step. The old index is kept (delete it when satisfied)."""
        current = self._aliased_indices()
        versions = self._versions()
        new_version = (versions[-1] if versions else 0) + 1
        new_name = self._create_version(new_version)
        copied = 0
        batch: list[ImageDocument] = []
        for doc in self.iter_documents():
            # documents from before analyzed_at that _update_by_query could not fill
            batch.append(replace(doc, analyzed_at=doc.analyzed_at or doc.ingested_at))
            if len(batch) == BULK_CHUNK:
                self._bulk(batch, index=new_name, refresh="false")
                copied += len(batch)
                batch.clear()
                if on_progress:
                    on_progress(copied)
        if batch:
            self._bulk(batch, index=new_name, refresh="false")
            copied += len(batch)
            if on_progress:
                on_progress(copied)
        self.client.request("POST", f"/{new_name}/_refresh")
        actions: list[dict[str, Any]] = [
            {"remove": {"index": i, "alias": self.alias}} for i in current
        ]
        actions.append({"add": {"index": new_name, "alias": self.alias}})
        self.client.request("POST", "/_aliases", {"actions": actions})
        return {"from": current, "to": new_name, "documents": copied}

    # -- writes ---------------------------------------------------------------------------------

    def _bulk(self, documents: Sequence[ImageDocument], index: str, refresh: str) -> None:
        lines = []
        for doc in documents:
            lines.append(json.dumps({"index": {"_index": index, "_id": doc.id}}))
            lines.append(json.dumps(_engine_document(doc), ensure_ascii=False))
        payload = ("\n".join(lines) + "\n").encode()
        response = self.client.request(
            "POST", "/_bulk", ndjson=payload, params={"refresh": refresh}
        )
        if response and response.get("errors"):
            failures = [
                item["index"]["error"]
                for item in response["items"]
                if "error" in item.get("index", {})
            ]
            first = failures[0]
            raise EngineRequestError(
                400,
                f"{len(failures)} of {len(documents)} documents rejected; first: "
                f"{first.get('type')}: {first.get('reason')}",
            )

    def upsert(self, documents: Sequence[ImageDocument]) -> None:
        for start in range(0, len(documents), BULK_CHUNK):
            self._bulk(
                documents[start : start + BULK_CHUNK], index=self.alias, refresh=self.refresh
            )

    def delete(self, doc_id: str) -> bool:
        response = self.client.request(
            "DELETE",
            f"/{self.alias}/_doc/{doc_id}",
            params={"refresh": self.refresh},
            allow=(404,),
        )
        return response is not None and response.get("result") == "deleted"

    # -- reads ----------------------------------------------------------------------------------

    def get(self, doc_id: str) -> ImageDocument | None:
        if not doc_id or "/" in doc_id:
            return None
        params = {"_source_exclude_vectors": "false"} if self._vectors_left_out() else None
        response = self.client.request(
            "GET", f"/{self.alias}/_doc/{doc_id}", params=params, allow=(404,)
        )
        if not response or not response.get("found"):
            return None
        return _from_source(response["_source"])

    def _search(self, body: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = self.client.request("POST", f"/{self.alias}/_search", body)
        return response

    def _vectors_left_out(self) -> bool:
        """Whether the engine leaves vectors out of `_source` unless asked: Elasticsearch 9.2+
        (`index.mapping.exclude_source_vectors`, on by default for new indexes); asked for, they
        come back as the float32 values written."""
        return self.flavor == "elasticsearch" and self._engine_version() >= (9, 2)

    def _whole_source(self) -> dict[str, Any]:
        """A search body's `_source` that brings documents back with their vectors."""
        return {"_source": {"exclude_vectors": False}} if self._vectors_left_out() else {}

    def find_by_title(self, title: str, limit: int = 10) -> list[ImageDocument]:
        response = self._search(
            {
                "query": {"term": {"title.keyword": title.lower()}},
                "sort": [{"ingested_at": "desc"}, {"id": "asc"}],
                "size": limit,
                **self._whole_source(),
            }
        )
        return [_from_source(h["_source"]) for h in response["hits"]["hits"]]

    def _vector_mapping(self, field: str = "embedding") -> dict[str, Any]:
        """How `field` is mapped in the index (empty when it is not)."""
        mapping = self.client.request("GET", f"/{self.alias}/_mapping/field/{field}") or {}
        for body in mapping.values():
            found = body.get("mappings", {}).get(field, {}).get("mapping", {})
            return dict(found.get(field, {}))
        return {}

    def _vector_type(self, field: str = "embedding") -> str:
        """The type `field` has in the index: `knn_vector` / `dense_vector` when the engine can
        search it."""
        return str(self._vector_mapping(field).get("type", ""))

    def _rescores(self, mapping: dict[str, Any]) -> bool:
        """Whether vector hits get exact scores from the floats: always on OpenSearch (the
        k-NN plugin's scoring script); on Elasticsearch 8.18+ for quantised fields
        (`rescore_vector`; plain HNSW scores are exact already). Elasticsearch 8.12-8.17
        answers with the int8 estimates."""
        if mapping.get("type") == "knn_vector":
            return True
        kind = str(mapping.get("index_options", {}).get("type", ""))
        quantised = kind.startswith(("int8", "int4", "bbq"))
        return quantised and self._engine_version() >= (8, 18)

    def _check_people(self, query: SearchQuery) -> None:
        """A person search needs nested faces, which indexes made before mapping version 2
        lack: say how to get them rather than pass on the engine's parse error."""
        if query.people:
            self._need_nested_faces("searching by person")

    def _need_nested_faces(self, what: str) -> None:
        if not self._faces_nested:  # checked again until it is (a migrate may run meanwhile)
            mapping = self.client.request("GET", f"/{self.alias}/_mapping") or {}
            types = [
                body.get("mappings", {}).get("properties", {}).get("faces", {})
                for body in mapping.values()
            ]
            self._faces_nested = bool(types) and all(t.get("type") == "nested" for t in types)
        if not self._faces_nested:
            raise ConfigError(
                f"{what} needs the index's faces mapped as nested, which "
                f"{self.alias!r} (made by an older imagedex) lacks: run `imagedex index migrate`"
            )

    def search(self, query: SearchQuery) -> SearchResult:
        self._check_people(query)
        if query.vector is not None:
            mapping = self._vector_mapping(query.vector_field)
            if mapping.get("type") not in VECTOR_TYPES:
                raise ConfigError(
                    "semantic and similar-image search need vector search in the engine: "
                    "install the OpenSearch k-NN plugin (then `imagedex index migrate`)"
                )
            body = dsl.vector_body(
                query, self.flavor, self.resolve_person, rescore=self._rescores(mapping)
            )
            response = self._search(body)
        else:
            response = self._search(dsl.search_body(query, self.resolve_person))
        hits = response["hits"]
        return SearchResult(
            total=int(hits["total"]["value"]),
            documents=[_from_source(h["_source"]) for h in hits["hits"]],
        )

    def top_labels(
        self, limit: int = 20, min_confidence: float = 0.0, parents: bool = False
    ) -> list[LabelCount]:
        response = self._search(dsl.top_labels_body(limit, min_confidence, parents))
        return [LabelCount(label, count) for label, count in dsl.top_labels_from(response)]

    def facets(self, query: SearchQuery, labels: int = 20, interval: str = "day") -> Facets:
        """Counts over the documents the query's filters match (one aggregation request); a
        vector query's vector is ignored. Labels count images per primary label at or above
        the query's min_confidence. Documents indexed before `max_confidence` existed are
        missing from the confidence buckets until `imagedex index migrate`."""
        shape.check(labels, interval)
        self._check_people(query)
        response = self._search(dsl.facets_body(query, labels, interval, self.resolve_person))
        return dsl.facets_from(response, query, labels, interval)

    def top_people(
        self, query: SearchQuery, limit: int = 10, exclude: Sequence[int] = ()
    ) -> list[tuple[int, int]]:
        self._check_people(query)
        self._need_nested_faces("counting people")
        body = dsl.top_people_body(query, limit, exclude, self.resolve_person)
        return dsl.top_people_from(self._search(body), limit)

    def near_duplicates(self, phash: str, limit: int = 20) -> list[str]:
        response = self._search(
            {
                "query": {"terms": {"phash_bands": phash_bands(phash)}},
                "size": 1000,
                "_source": ["id", "phash"],
            }
        )
        close = sorted(
            (distance(phash, h["_source"]["phash"]), h["_source"]["id"])
            for h in response["hits"]["hits"]
            if h["_source"].get("phash")
        )
        return [i for dist, i in close if dist <= NEAR_DUPLICATE_DISTANCE][:limit]

    def count(self) -> int:
        return int(self.client.request("GET", f"/{self.alias}/_count")["count"])

    def iter_documents(self, batch: int = 500) -> Iterator[ImageDocument]:
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {
                "size": batch,
                "sort": [{"id": "asc"}],
                "query": {"match_all": {}},
                **self._whole_source(),
            }
            if after is not None:
                body["search_after"] = after
            hits = self._search(body)["hits"]["hits"]
            if not hits:
                return
            for hit in hits:
                yield _from_source(hit["_source"])
            after = hits[-1]["sort"]

    def close(self) -> None:
        self.client.close()
