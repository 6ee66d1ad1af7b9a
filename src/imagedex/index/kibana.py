"""Saved objects (NDJSON) for Kibana 8 and OpenSearch Dashboards 2 over the imagedex index.

The export holds an index pattern (a data view in Kibana) for the index alias with `ingested_at`
as its time field, six visualizations and one dashboard placing them. Ids are uuid5 values of the
object's name and the alias, so a second export replaces the first on import instead of adding
copies, and two aliases never collide.

`labels` and `moderation` are `nested` fields (so a label and its confidence match together), and
the aggregation-based visualizations of both tools cannot aggregate nested fields. The label and
moderation panels are therefore Vega / Vega-Lite visualizations whose Elasticsearch query runs a
`nested` aggregation; they follow the dashboard's query, filters and time range (`%context%`).
Images over time is a plain date histogram on the index pattern.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

FLAVORS = ("kibana", "opensearch-dashboards")
TIME_FIELD = "ingested_at"
UNSAFE_THRESHOLD = 50.0  # as SearchQuery.unsafe_threshold: moderation confidence that is unsafe
TOP_LABELS = 20
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://imagedex/saved-objects")
# Versions of the saved-object formats written here; both tools migrate them forward on import.
_MIGRATION = {"index-pattern": "7.6.0", "visualization": "7.10.0", "dashboard": "7.9.3"}
_VEGA = "https://vega.github.io/schema/vega/v5.json"
_VEGA_LITE = "https://vega.github.io/schema/vega-lite/v5.json"
_SOURCE_REF = "kibanaSavedObjectMeta.searchSourceJSON.index"


@dataclass(frozen=True)
class Panel:
    name: str
    title: str
    vis_state: dict[str, Any]
    uses_index_pattern: bool
    width: int
    height: int


def index_alias(index_url: str) -> str:
    """The engine alias of an `opensearch+http://host:9200/alias` index setting (`images` when the
    index is SQLite: the name the engine would use after a move)."""
    parsed = urlparse(index_url)
    if "+" in parsed.scheme:
        return parsed.path.strip("/") or "images"
    return "images"


def default_flavor(index_url: str) -> str:
    return "kibana" if index_url.startswith("elasticsearch") else "opensearch-dashboards"


def object_id(alias: str, name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{alias}/{name}"))


def saved_objects(alias: str, flavor: str = "opensearch-dashboards") -> list[dict[str, Any]]:
    """The index pattern, the visualizations and the dashboard, in import order."""
    if flavor not in FLAVORS:
        raise ValueError(f"flavor must be one of {', '.join(FLAVORS)} (got {flavor!r})")
    if not alias or any(ch in alias for ch in ' "\\/,*?<>|#'):
        raise ValueError(f"{alias!r} is not an index or alias name")
    pattern_id = object_id(alias, "index-pattern")
    objects = [_index_pattern(alias, pattern_id, flavor)]
    panels = _panels(alias)
    objects += [_visualization(alias, panel, pattern_id) for panel in panels]
    objects.append(_dashboard(alias, panels))
    return objects


def export_ndjson(alias: str, flavor: str = "opensearch-dashboards") -> str:
    """One saved object per line, as the tools' import (API or Saved objects page) reads."""
    lines = [
        json.dumps(obj, ensure_ascii=False, sort_keys=True) for obj in saved_objects(alias, flavor)
    ]
    return "\n".join(lines) + "\n"


def _envelope(alias: str, kind: str, name: str, attributes: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": object_id(alias, name),
        "type": kind,
        "attributes": attributes,
        "references": [],
        "migrationVersion": {kind: _MIGRATION[kind]},
    }


def _index_pattern(alias: str, pattern_id: str, flavor: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {"title": alias, "timeFieldName": TIME_FIELD}
    if flavor == "kibana":
        attributes["name"] = f"imagedex ({alias})"  # a data view's display name (Kibana 8)
    obj = _envelope(alias, "index-pattern", "index-pattern", attributes)
    obj["id"] = pattern_id
    return obj


def _visualization(alias: str, panel: Panel, pattern_id: str) -> dict[str, Any]:
    search_source: dict[str, Any] = {"query": {"query": "", "language": "kuery"}, "filter": []}
    if panel.uses_index_pattern:
        search_source["indexRefName"] = _SOURCE_REF
    attributes = {
        "title": panel.title,
        "description": "imagedex",
        "visState": json.dumps({"title": panel.title, **panel.vis_state}),
        "uiStateJSON": "{}",
        "version": 1,
        "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(search_source)},
    }
    obj = _envelope(alias, "visualization", panel.name, attributes)
    if panel.uses_index_pattern:
        obj["references"] = [{"name": _SOURCE_REF, "type": "index-pattern", "id": pattern_id}]
    return obj


def _dashboard(alias: str, panels: list[Panel]) -> dict[str, Any]:
    entries, references = [], []
    x = y = row_height = 0
    for i, panel in enumerate(panels):
        if x + panel.width > 48:  # the dashboards' grid is 48 columns wide
            x, y, row_height = 0, y + row_height, 0
        ref = f"panel_{i}"
        entries.append(
            {
                "version": "7.10.0",
                "panelIndex": str(i + 1),
                "gridData": {"x": x, "y": y, "w": panel.width, "h": panel.height, "i": str(i + 1)},
                "embeddableConfig": {},
                "panelRefName": ref,
            }
        )
        references.append(
            {"name": ref, "type": "visualization", "id": object_id(alias, panel.name)}
        )
        x += panel.width
        row_height = max(row_height, panel.height)
    attributes = {
        "title": f"imagedex: {alias}",
        "description": "Images over time, top labels, moderation (exported by imagedex)",
        "hits": 0,
        "panelsJSON": json.dumps(entries),
        "optionsJSON": json.dumps({"useMargins": True, "hidePanelTitles": False}),
        "version": 1,
        "timeRestore": False,
        "kibanaSavedObjectMeta": {
            "searchSourceJSON": json.dumps(
                {"query": {"query": "", "language": "kuery"}, "filter": []}
            )
        },
    }
    obj = _envelope(alias, "dashboard", "dashboard", attributes)
    obj["references"] = references
    return obj


# -- the panels --------------------------------------------------------------------------------


def _panels(alias: str) -> list[Panel]:
    return [
        Panel("images-over-time", "Images over time", _over_time(), True, 48, 12),
        Panel("top-labels-bar", "Top labels", _vega(_top_labels_bar(alias)), False, 24, 15),
        Panel("top-labels-pie", "Top labels (share)", _vega(_top_labels_pie(alias)), False, 24, 15),
        Panel("label-cloud", "Label cloud", _vega(_label_cloud(alias)), False, 24, 15),
        Panel("moderation", "Moderation", _vega(_moderation(alias)), False, 24, 15),
    ]


def _over_time() -> dict[str, Any]:
    return {
        "type": "histogram",
        "params": {
            "type": "histogram",
            "addTooltip": True,
            "addLegend": False,
            "legendPosition": "right",
            "times": [],
            "addTimeMarker": False,
        },
        "aggs": [
            {"id": "1", "enabled": True, "type": "count", "schema": "metric", "params": {}},
            {
                "id": "2",
                "enabled": True,
                "type": "date_histogram",
                "schema": "segment",
                "params": {
                    "field": TIME_FIELD,
                    "interval": "auto",
                    "min_doc_count": 1,
                    "extended_bounds": {},
                    "customLabel": "ingested",
                },
            },
        ],
    }


def _vega(spec: dict[str, Any]) -> dict[str, Any]:
    # JSON is valid HJSON, which is what both tools read in a Vega spec
    return {"type": "vega", "params": {"spec": json.dumps(spec, indent=2)}, "aggs": []}


def _search(alias: str, aggs: dict[str, Any]) -> dict[str, Any]:
    """A Vega data URL: an Elasticsearch query the tools run with the dashboard's context."""
    return {
        "index": alias,
        "%context%": True,
        "%timefield%": TIME_FIELD,
        "body": {"size": 0, "aggs": aggs},
    }


def _label_aggs(size: int) -> dict[str, Any]:
    """Images per label: terms inside the nested labels, counted back on the images."""
    return {
        "labels": {
            "nested": {"path": "labels"},
            "aggs": {
                "names": {
                    "terms": {"field": "labels.label", "size": size},
                    "aggs": {"images": {"reverse_nested": {}}},
                }
            },
        }
    }


_LABEL_BUCKETS = {"property": "aggregations.labels.names.buckets"}
_LABEL_FIELDS = [
    {"calculate": "datum.key", "as": "label"},
    {"calculate": "datum.images.doc_count", "as": "images"},
]


def _top_labels_bar(alias: str) -> dict[str, Any]:
    return {
        "$schema": _VEGA_LITE,
        "title": "Top labels",
        "data": {"url": _search(alias, _label_aggs(TOP_LABELS)), "format": _LABEL_BUCKETS},
        "transform": _LABEL_FIELDS,
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "y": {"field": "label", "type": "nominal", "sort": "-x", "title": None},
            "x": {"field": "images", "type": "quantitative", "title": "images"},
        },
    }


def _top_labels_pie(alias: str) -> dict[str, Any]:
    return {
        "$schema": _VEGA_LITE,
        "title": "Top labels (share of labelled images)",
        "data": {"url": _search(alias, _label_aggs(10)), "format": _LABEL_BUCKETS},
        "transform": _LABEL_FIELDS,
        "mark": {"type": "arc", "tooltip": True},
        "encoding": {
            "theta": {"field": "images", "type": "quantitative"},
            "color": {"field": "label", "type": "nominal", "sort": "-theta"},
        },
    }


def _label_cloud(alias: str) -> dict[str, Any]:
    return {
        "$schema": _VEGA,
        "autosize": "none",
        "data": [
            {
                "name": "labels",
                "url": _search(alias, _label_aggs(50)),
                "format": _LABEL_BUCKETS,
                "transform": [
                    {
                        "type": "wordcloud",
                        "size": [{"signal": "width"}, {"signal": "height"}],
                        "text": {"field": "key"},
                        "fontSize": {"field": "images.doc_count"},
                        "fontSizeRange": [12, 48],
                        "padding": 2,
                    }
                ],
            }
        ],
        "scales": [
            {
                "name": "colour",
                "type": "ordinal",
                "domain": {"data": "labels", "field": "key"},
                "range": "category",
            }
        ],
        "marks": [
            {
                "type": "text",
                "from": {"data": "labels"},
                "encode": {
                    "enter": {
                        "text": {"field": "key"},
                        "align": {"value": "center"},
                        "baseline": {"value": "alphabetic"},
                        "fill": {"scale": "colour", "field": "key"},
                        "tooltip": {"signal": "datum.key + ': ' + datum.images.doc_count"},
                    },
                    "update": {
                        "x": {"field": "x"},
                        "y": {"field": "y"},
                        "angle": {"field": "angle"},
                        "fontSize": {"field": "fontSize"},
                    },
                },
            }
        ],
    }


def _moderation(alias: str) -> dict[str, Any]:
    unsafe = {
        "nested": {
            "path": "moderation",
            "query": {"range": {"moderation.confidence": {"gte": UNSAFE_THRESHOLD}}},
        }
    }
    safe = {"bool": {"must_not": [unsafe]}}
    # anonymous filters come back as an array, in this order
    aggs = {"state": {"filters": {"filters": [unsafe, safe]}}}
    return {
        "$schema": _VEGA_LITE,
        "title": "Moderation: safe and unsafe images",
        "data": {"url": _search(alias, aggs), "format": {"property": "aggregations.state.buckets"}},
        "transform": [
            {"window": [{"op": "row_number", "as": "row"}]},
            {"calculate": "datum.row == 1 ? 'unsafe' : 'safe'", "as": "state"},
            {"calculate": "datum.doc_count", "as": "images"},
        ],
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "x": {"field": "state", "type": "nominal", "title": None},
            "y": {"field": "images", "type": "quantitative", "title": "images"},
            "color": {
                "field": "state",
                "type": "nominal",
                "scale": {"domain": ["safe", "unsafe"], "range": ["#54b399", "#d36086"]},
                "legend": None,
            },
        },
    }
