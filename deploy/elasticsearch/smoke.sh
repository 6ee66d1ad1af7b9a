#!/usr/bin/env bash
# Smoke test of a running Elasticsearch node: deploy/elasticsearch/smoke.sh [URL]
# Creates an index shaped like imagedex's (custom normalizer + analyzer with lowercase and
# asciifolding, nested labels, dense_vector), loads it with _bulk, and checks: _aliases,
# normalizer and analyzer folding, function_score/field_value_factor inside a nested query,
# multi_match bool_prefix, terms + reverse_nested aggregation, a kNN search on the
# dense_vector, search_after paging, GET /, wildcard delete. Deletes what it created.
# Needs curl and python3. Exit status 0 when every check passed.
set -euo pipefail
URL="${1:-http://127.0.0.1:9200}"
IDX="imagedex-smoke-$$-v1"
ALIAS="imagedex-smoke-$$"
# shellcheck source=../lib/smoke.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/smoke.sh"

r="$(req GET /)"
check "GET / (version 8.x or 9.x)" "$r" 'r["version"]["number"].split(".")[0] in ("8", "9") and r["tagline"]'

r="$(req PUT "/$IDX" '{
  "settings": {
    "number_of_shards": 1, "number_of_replicas": 0,
    "analysis": {
      "normalizer": {"folded": {"type": "custom", "filter": ["lowercase", "asciifolding"]}},
      "analyzer": {"folded": {"type": "custom", "tokenizer": "standard", "filter": ["lowercase", "asciifolding"]}}
    }
  },
  "mappings": {"dynamic": "strict", "properties": {
    "id": {"type": "keyword"},
    "title": {"type": "text", "analyzer": "folded", "fields": {"keyword": {"type": "keyword", "normalizer": "folded"}}},
    "label_text": {"type": "text", "analyzer": "folded"},
    "ingested_at": {"type": "date"},
    "labels": {"type": "nested", "properties": {
      "label": {"type": "keyword", "normalizer": "folded", "fields": {"raw": {"type": "keyword"}}},
      "confidence": {"type": "float"}}},
    "embedding": {"type": "dense_vector", "dims": 3, "index": true, "similarity": "cosine"}
  }}}')"
check "create index (normalizer + analyzer + nested + dense_vector)" "$r" 'r.get("acknowledged") is True'

r="$(req POST "/$IDX/_analyze" '{"normalizer": "folded", "text": "Crème BRÛLÉE"}')"
check "_analyze with the normalizer (lowercase + asciifolding)" "$r" '[t["token"] for t in r["tokens"]] == ["creme brulee"]'

bulk=''
add() { bulk+="{\"index\": {\"_id\": \"$1\"}}"$'\n'"$2"$'\n'; }
add a '{"id": "a", "title": "Café crème", "label_text": "espresso coffee", "ingested_at": "2026-01-01T00:00:01Z", "labels": [{"label": "Espresso", "confidence": 99.0}, {"label": "Café", "confidence": 60.0}], "embedding": [1, 0, 0]}'
add b '{"id": "b", "title": "Rex at the Beach", "label_text": "golden retriever dog", "ingested_at": "2026-01-01T00:00:02Z", "labels": [{"label": "Golden Retriever", "confidence": 88.0}, {"label": "dog", "confidence": 70.0}], "embedding": [0, 1, 0]}'
add c '{"id": "c", "title": "Pizza night", "label_text": "pizza food", "ingested_at": "2026-01-01T00:00:03Z", "labels": [{"label": "pizza", "confidence": 95.0}, {"label": "Plate", "confidence": 40.0}, {"label": "PIZZA", "confidence": 30.0}], "embedding": [0.9, 0.1, 0]}'
add d '{"id": "d", "title": "Pizza again", "label_text": "pizza", "ingested_at": "2026-01-01T00:00:04Z", "labels": [{"label": "Pizza", "confidence": 85.0}], "embedding": [0, 0, 1]}'
r="$(curl -sS -m 30 -X POST "$URL/$IDX/_bulk?refresh=true" -H 'Content-Type: application/x-ndjson' --data-binary "$bulk")"
check "_bulk (4 docs, refresh)" "$r" 'r["errors"] is False and len(r["items"]) == 4'

r="$(req POST /_aliases '{"actions": [{"add": {"index": "'"$IDX"'", "alias": "'"$ALIAS"'"}}]}')"
check "_aliases add" "$r" 'r.get("acknowledged") is True'
r="$(req GET "/_alias/$ALIAS")"
check "GET _alias" "$r" 'list(r) == ["'"$IDX"'"]'

r="$(req POST "/$ALIAS/_search" '{"query": {"nested": {"path": "labels", "query": {"term": {"labels.label": "CAFE"}}}}, "_source": ["id"]}')"
check "term on normalized nested keyword (CAFE finds Café)" "$r" '[h["_source"]["id"] for h in r["hits"]["hits"]] == ["a"]'

r="$(req POST "/$ALIAS/_search" '{"query": {"match": {"title": "creme"}}, "_source": ["id"]}')"
check "match on text with the custom analyzer (creme finds crème)" "$r" '[h["_source"]["id"] for h in r["hits"]["hits"]] == ["a"]'

r="$(req POST "/$ALIAS/_search" '{"query": {"nested": {"path": "labels", "score_mode": "max", "query": {"function_score": {
  "query": {"bool": {"filter": [{"term": {"labels.label": "pizza"}}, {"range": {"labels.confidence": {"gte": 20}}}]}},
  "field_value_factor": {"field": "labels.confidence", "missing": 0}, "boost_mode": "replace"}}}}, "_source": ["id"]}')"
check "function_score field_value_factor inside nested (max confidence)" "$r" \
  '[(h["_source"]["id"], round(h["_score"], 3)) for h in r["hits"]["hits"]] == [("c", 95.0), ("d", 85.0)]'

r="$(req POST "/$ALIAS/_search" '{"query": {"multi_match": {"query": "golden retr", "type": "bool_prefix", "fields": ["title", "label_text"], "operator": "and"}}, "_source": ["id"]}')"
check "multi_match bool_prefix (golden retr)" "$r" '[h["_source"]["id"] for h in r["hits"]["hits"]] == ["b"]'

r="$(req POST "/$ALIAS/_search" '{"size": 0, "aggs": {"labels": {"nested": {"path": "labels"}, "aggs": {"names": {
  "terms": {"field": "labels.label", "size": 3, "order": [{"images": "desc"}, {"_key": "asc"}]},
  "aggs": {"images": {"reverse_nested": {}}, "display": {"terms": {"field": "labels.label.raw", "size": 1}}}}}}}}')"
check "terms + reverse_nested aggregation (images, not label rows)" "$r" \
  '[(b["key"], b["doc_count"], b["images"]["doc_count"]) for b in r["aggregations"]["labels"]["names"]["buckets"]] == [("pizza", 3, 2), ("cafe", 1, 1), ("dog", 1, 1)]'

r="$(req POST "/$ALIAS/_search" '{"knn": {"field": "embedding", "query_vector": [1, 0.05, 0], "k": 2, "num_candidates": 10}, "_source": ["id"]}')"
check "kNN search on dense_vector (cosine)" "$r" '[h["_source"]["id"] for h in r["hits"]["hits"]] == ["a", "c"]'

r="$(req POST "/$ALIAS/_search" '{"knn": {"field": "embedding", "query_vector": [1, 0.05, 0], "k": 2, "num_candidates": 10,
  "filter": {"term": {"title.keyword": "pizza NIGHT"}}}, "_source": ["id"]}')"
check "kNN search with a filter" "$r" '[h["_source"]["id"] for h in r["hits"]["hits"]] == ["c"]'

sort='[{"ingested_at": "desc"}, {"id": "asc"}]'
r="$(req POST "/$ALIAS/_search" '{"size": 2, "sort": '"$sort"', "_source": ["id"]}')"
check "sorted page 1" "$r" '[h["_source"]["id"] for h in r["hits"]["hits"]] == ["d", "c"]'
after="$(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1])["hits"]["hits"][-1]["sort"]))' "$r" 2>/dev/null || echo '[]')"
r="$(req POST "/$ALIAS/_search" '{"size": 2, "sort": '"$sort"', "search_after": '"$after"', "_source": ["id"]}')"
check "search_after page 2" "$r" '[h["_source"]["id"] for h in r["hits"]["hits"]] == ["b", "a"]'

r="$(req GET "/$ALIAS/_count")"
check "_count through the alias" "$r" 'r["count"] == 4'

check_health

r="$(req DELETE "/imagedex-smoke-$$-v*")"
check "wildcard index delete" "$r" 'r.get("acknowledged") is True'
smoke_done
