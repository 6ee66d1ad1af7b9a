"""`imagedex kibana export`: saved objects that import as a whole and query real index fields."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from imagedex.cli.main import main
from imagedex.index.engine_dsl import mappings
from imagedex.index.kibana import FLAVORS, export_ndjson, index_alias, saved_objects

AGGREGATABLE = {"keyword", "date", "float", "integer", "long"}


def parse(text: str) -> list[dict[str, Any]]:
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def mapping_field(path: str) -> tuple[dict[str, Any], str | None]:
    """The mapping of a dotted field and the nested path it lives under (None at the root)."""
    properties = mappings(None)["properties"]
    node: dict[str, Any] = {"properties": properties}
    nested: str | None = None
    walked: list[str] = []
    for part in path.split("."):
        children = node.get("properties") or node.get("fields") or {}
        assert part in children, f"{path}: {part!r} is not in the engine mapping"
        node = children[part]
        walked.append(part)
        if node.get("type") == "nested":
            nested = ".".join(walked)
    return node, nested


def vega_fields(node: Any, nested: str | None = None) -> list[tuple[str, str | None]]:
    """(field, enclosing nested path) for every field an Elasticsearch query body names."""
    found: list[tuple[str, str | None]] = []
    if isinstance(node, dict):
        if "nested" in node and isinstance(node["nested"], dict) and "path" in node["nested"]:
            path = node["nested"]["path"]
            found.append((path, None))
            for value in node.values():
                found += vega_fields(value, path)
            return found
        if "reverse_nested" in node:
            nested = None
        for key, value in node.items():
            if key == "field" and isinstance(value, str):
                found.append((value, nested))
            elif key == "range" and isinstance(value, dict):
                found += [(name, nested) for name in value]
            else:
                found += vega_fields(value, nested)
    elif isinstance(node, list):
        for item in node:
            found += vega_fields(item, nested)
    return found


@pytest.mark.parametrize("flavor", FLAVORS)
def test_export_is_complete_and_consistent(flavor: str) -> None:
    objects = parse(export_ndjson("photos", flavor))
    kinds = [o["type"] for o in objects]
    assert kinds[0] == "index-pattern" and kinds[-1] == "dashboard"
    assert kinds.count("visualization") == 5
    titles = {o["attributes"]["title"] for o in objects if o["type"] == "visualization"}
    assert {
        "Images over time",
        "Top labels",
        "Top labels (share)",
        "Label cloud",
        "Moderation",
    } == titles
    by_key = {(o["type"], o["id"]): o for o in objects}
    assert len(by_key) == len(objects)  # ids unique
    for obj in objects:
        assert uuid.UUID(obj["id"]).version == 5
        assert obj["migrationVersion"] == {obj["type"]: obj["migrationVersion"][obj["type"]]}
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in by_key, f"{obj['id']} refers to a missing {ref}"
    pattern = objects[0]["attributes"]
    assert pattern["title"] == "photos" and pattern["timeFieldName"] == "ingested_at"
    assert ("name" in pattern) == (flavor == "kibana")  # a data view's name exists in Kibana 8

    dashboard = objects[-1]
    panels = json.loads(dashboard["attributes"]["panelsJSON"])
    ref_names = {r["name"]: r for r in dashboard["references"]}
    assert [p["panelRefName"] for p in panels] == list(ref_names)
    assert {r["type"] for r in ref_names.values()} == {"visualization"}
    assert {r["id"] for r in ref_names.values()} == {
        o["id"] for o in objects if o["type"] == "visualization"
    }
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridData"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 48 and grid["i"] == panel["panelIndex"]
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not area & cells, "dashboard panels overlap"
        cells |= area
    json.loads(dashboard["attributes"]["optionsJSON"])


def test_ids_are_stable_and_differ_per_alias() -> None:
    assert export_ndjson("photos") == export_ndjson("photos")
    first = {o["id"] for o in saved_objects("photos")}
    other = {o["id"] for o in saved_objects("archive")}
    assert not first & other
    with pytest.raises(ValueError, match="not an index"):
        saved_objects("bad name")
    with pytest.raises(ValueError, match="flavor"):
        saved_objects("photos", "grafana")


def test_visualizations_use_fields_of_the_engine_mapping() -> None:
    objects = saved_objects("photos")
    pattern_id = objects[0]["id"]
    timefield, _ = mapping_field(objects[0]["attributes"]["timeFieldName"])
    assert timefield["type"] == "date"
    used: list[tuple[str, str | None]] = []
    for obj in objects[1:-1]:
        state = json.loads(obj["attributes"]["visState"])
        assert state["title"] == obj["attributes"]["title"]
        source = json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
        if state["type"] == "vega":
            spec = json.loads(state["params"]["spec"])  # JSON is valid HJSON
            assert spec["$schema"].startswith("https://vega.github.io/schema/vega")
            sources = spec["data"] if isinstance(spec["data"], list) else [spec["data"]]
            for data in sources:
                url = data["url"]
                assert url["index"] == "photos" and url["%context%"] is True
                used.append((url["%timefield%"], None))
                used += vega_fields(url["body"])
            assert obj["references"] == [] and "indexRefName" not in source
        else:
            (ref,) = obj["references"]
            assert ref["id"] == pattern_id and source["indexRefName"] == ref["name"]
            used += [(a["params"]["field"], None) for a in state["aggs"] if "field" in a["params"]]
    names = {name for name, _ in used}
    assert {"ingested_at", "labels", "labels.label", "moderation", "moderation.confidence"} <= names
    for name, nested in used:
        field, needs = mapping_field(name)
        if field.get("type") == "nested":
            continue
        assert field["type"] in AGGREGATABLE, f"{name} is {field['type']}, not aggregatable"
        # a field inside a nested object is only visible to a nested query or aggregation
        assert nested == needs, f"{name} is used under nested path {nested}, needs {needs}"


def test_alias_comes_from_the_index_setting() -> None:
    assert index_alias("opensearch+http://127.0.0.1:9200/photos-live") == "photos-live"
    assert index_alias("elasticsearch+https://es:9200/") == "images"
    assert index_alias("sqlite") == "images"


def test_cli_export_writes_ndjson(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "objects.ndjson"
    env = {"IMAGEDEX_INDEX": "elasticsearch+http://127.0.0.1:1/photos-live"}
    result = runner.invoke(
        main,
        ["--data-dir", str(tmp_path / "d"), "kibana", "export", "--out", str(out), "--json"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["flavor"] == "kibana" and summary["index"] == "photos-live"
    objects = parse(out.read_text())
    assert objects[0]["attributes"]["title"] == "photos-live"
    assert [o["id"] for o in objects] == [o["id"] for o in summary["objects"]]

    to_stdout = runner.invoke(
        main,
        [
            "--data-dir",
            str(tmp_path / "d"),
            "kibana",
            "export",
            "--flavor",
            "opensearch-dashboards",
        ],
        env={"IMAGEDEX_INDEX": "opensearch+http://127.0.0.1:1/archive"},
    )
    assert to_stdout.exit_code == 0
    assert parse(to_stdout.stdout)[0]["attributes"] == {
        "title": "archive",
        "timeFieldName": "ingested_at",
    }
    bad = runner.invoke(
        main, ["--data-dir", str(tmp_path / "d"), "kibana", "export", "--index", "a b"]
    )
    assert bad.exit_code == 2 and "not an index" in bad.output
    assert runner.invoke(main, ["kibana", "export", "--help"]).exit_code == 0
