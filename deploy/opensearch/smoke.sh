#!/usr/bin/env bash
# Smoke test of a running node: deploy/opensearch/smoke.sh [URL] [--knn|--no-knn]
# Creates an index with a nested field and a keyword field with a lowercase normalizer, indexes
# docs, runs nested/range, terms, nested aggregation, match and date_histogram queries (and a
# Lucene-engine k-NN query when the opensearch-knn plugin is loaded, or with --knn), checks the
# answers, then deletes the index.
# Needs curl and python3. Exit status 0 when every check passed.
set -euo pipefail
URL="${1:-http://127.0.0.1:9200}"
case "${2:-}" in
  --knn) KNN=1 ;;
  --no-knn) KNN=0 ;;
  *) if curl -sS -m 10 "$URL/_cat/plugins?h=component" | grep -qx 'opensearch-knn'; then KNN=1; else KNN=0; fi ;;
esac
IDX="imagedex-smoke-$$"
# shellcheck source=../lib/smoke.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/smoke.sh"

vec_mapping=''
if [ "$KNN" = 1 ]; then
  vec_mapping=', "embedding": {"type": "knn_vector", "dimension": 3, "method": {"name": "hnsw", "engine": "lucene", "space_type": "cosinesimil"}}'
fi
r="$(req PUT "/$IDX" '{
  "settings": {
    "number_of_shards": 1, "number_of_replicas": 0'"$([ "$KNN" = 1 ] && echo ', "knn": true')"',
    "analysis": {"normalizer": {"lc": {"type": "custom", "filter": ["lowercase", "asciifolding"]}}}
  },
  "mappings": {"properties": {
    "key": {"type": "keyword"},
    "camera": {"type": "keyword", "normalizer": "lc"},
    "caption": {"type": "text"},
    "taken": {"type": "date"},
    "labels": {"type": "nested", "properties": {
      "name": {"type": "keyword", "normalizer": "lc"},
      "score": {"type": "float"}}}'"$vec_mapping"'
  }}}')"
check "create index (nested + keyword normalizer)" "$r" 'r.get("acknowledged") is True'

doc() { # id json
  req PUT "/$IDX/_doc/$1" "$2" >/dev/null
}
e1=''; e2=''; e3=''
if [ "$KNN" = 1 ]; then e1=', "embedding": [1, 0, 0]'; e2=', "embedding": [0, 1, 0]'; e3=', "embedding": [0.9, 0.1, 0]'; fi
doc 1 '{"key": "a.jpg", "camera": "Canon EOS", "caption": "a cat on a sofa", "taken": "2024-01-05T10:00:00Z",
        "labels": [{"name": "Cat", "score": 0.93}, {"name": "Sofa", "score": 0.40}]'"$e1"'}'
doc 2 '{"key": "b.jpg", "camera": "CANON eos", "caption": "a dog in the park", "taken": "2024-02-11T10:00:00Z",
        "labels": [{"name": "Dog", "score": 0.88}, {"name": "cat", "score": 0.20}]'"$e2"'}'
doc 3 '{"key": "c.jpg", "camera": "Nikon", "caption": "two cats sleeping", "taken": "2024-02-20T10:00:00Z",
        "labels": [{"name": "CAT", "score": 0.75}]'"$e3"'}'
req POST "/$IDX/_refresh" >/dev/null

r="$(req POST "/$IDX/_search" '{"query": {"nested": {"path": "labels", "query": {"bool": {"filter": [
  {"term": {"labels.name": "cat"}}, {"range": {"labels.score": {"gte": 0.5}}}]}}}}, "_source": ["key"]}')"
check "nested query: term + range on nested float (same label)" "$r" \
  'sorted(h["_source"]["key"] for h in r["hits"]["hits"]) == ["a.jpg", "c.jpg"]'

r="$(req POST "/$IDX/_search" '{"size": 0, "aggs": {"cams": {"terms": {"field": "camera"}}}}')"
check "terms aggregation on normalized keyword" "$r" \
  '{b["key"]: b["doc_count"] for b in r["aggregations"]["cams"]["buckets"]} == {"canon eos": 2, "nikon": 1}'

r="$(req POST "/$IDX/_search" '{"size": 0, "aggs": {"labels": {"nested": {"path": "labels"},
  "aggs": {"names": {"terms": {"field": "labels.name"}, "aggs": {"avg": {"avg": {"field": "labels.score"}}}}}}}}')"
check "nested aggregation (terms + avg under nested)" "$r" \
  '{b["key"]: b["doc_count"] for b in r["aggregations"]["labels"]["names"]["buckets"]} == {"cat": 3, "dog": 1, "sofa": 1}'

r="$(req POST "/$IDX/_search" '{"query": {"match": {"caption": "cat"}}, "_source": ["key"]}')"
check "match query on text field" "$r" '[h["_source"]["key"] for h in r["hits"]["hits"]] == ["a.jpg"]'

r="$(req POST "/$IDX/_search" '{"size": 0, "aggs": {"per_month": {"date_histogram": {"field": "taken", "calendar_interval": "month"}}}}')"
check "date_histogram" "$r" \
  '[(b["key_as_string"][:7], b["doc_count"]) for b in r["aggregations"]["per_month"]["buckets"]] == [("2024-01", 1), ("2024-02", 2)]'

r="$(req POST "/$IDX/_search" '{"query": {"term": {"camera": "CANON EOS"}}, "_source": ["key"]}')"
check "term query goes through the normalizer" "$r" 'r["hits"]["total"]["value"] == 2'

r="$(req POST "/$IDX/_update_by_query?refresh=true" '{"query": {"term": {"key": "a.jpg"}}, "script": {"source": "ctx._source.caption = params.c", "params": {"c": "a black cat"}}}')"
check "update_by_query with painless (reindex + painless modules)" "$r" 'r["updated"] == 1'

if [ "$KNN" = 1 ]; then
  r="$(req POST "/$IDX/_search" '{"size": 2, "query": {"knn": {"embedding": {"vector": [1, 0.05, 0], "k": 2}}}, "_source": ["key"]}')"
  check "k-NN query (lucene engine)" "$r" '[h["_source"]["key"] for h in r["hits"]["hits"]] == ["a.jpg", "c.jpg"]'
  r="$(req POST "/$IDX/_search" '{"size": 2, "query": {"knn": {"embedding": {"vector": [1, 0.05, 0], "k": 3,
    "filter": {"term": {"camera": "nikon"}}}}}, "_source": ["key"]}')"
  check "k-NN query with filter" "$r" '[h["_source"]["key"] for h in r["hits"]["hits"]] == ["c.jpg"]'
fi

check_health
req DELETE "/$IDX" >/dev/null
smoke_done
