"""deploy/opensearch.sh and deploy/elasticsearch.sh `--version`: a major picks the newest version
the script lists as known to work, and the nodes it starts run that version (OpenSearch 3.x with
its k-NN plugin); what cannot work is refused in one line that says what would."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx

from conftest import ELASTICSEARCH_SCRIPT, OPENSEARCH_SCRIPT


def supported(script: Path) -> list[str]:
    """The script's table of versions known to work, oldest first."""
    found = re.search(r"^SUPPORTED_VERSIONS=\(([^)]*)\)", script.read_text(), re.MULTILINE)
    assert found, f"no SUPPORTED_VERSIONS in {script}"
    return found.group(1).split()


def newest(script: Path, major: str) -> str:
    return [v for v in supported(script) if v.split(".")[0] == major][-1]


def start_fails(script: Path, data: Path, *args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [str(script), "start", "--port", "auto", "--data", str(data), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 1, proc.stderr
    return proc.stderr.strip().splitlines()[-1]


def test_a_major_runs_the_newest_supported_opensearch_with_knn(opensearch3_url: str) -> None:
    version = httpx.get(opensearch3_url).json()["version"]
    assert version["distribution"] == "opensearch"
    assert version["number"] == newest(OPENSEARCH_SCRIPT, "3") == "3.5.0"
    plugins = httpx.get(f"{opensearch3_url}/_cat/plugins", params={"format": "json"}).json()
    assert {"component": "opensearch-knn", "version": "3.5.0.0"} in [
        {"component": p["component"], "version": p["version"]} for p in plugins
    ]


def test_a_major_runs_the_newest_supported_elasticsearch(elasticsearch9_url: str) -> None:
    number = httpx.get(elasticsearch9_url).json()["version"]["number"]
    assert number == newest(ELASTICSEARCH_SCRIPT, "9")
    assert number.startswith("9.")


def test_a_version_nothing_matches_is_refused_with_what_works(tmp_path: Path) -> None:
    line = start_fails(OPENSEARCH_SCRIPT, tmp_path / "os", "--version", "4")
    assert "no supported OpenSearch version matches '4'" in line
    assert f"known to work: {' '.join(supported(OPENSEARCH_SCRIPT))}" in line
    line = start_fails(ELASTICSEARCH_SCRIPT, tmp_path / "es", "--version", "7")
    assert "no supported Elasticsearch version matches '7'" in line
    assert "8.17.0" in line and newest(ELASTICSEARCH_SCRIPT, "9") in line
    line = start_fails(ELASTICSEARCH_SCRIPT, tmp_path / "es", "--version", "7.17.0")
    assert "only Elasticsearch 8.x and 9.x are supported (got 7.17.0" in line


def test_a_java_home_that_is_no_jdk_21_is_named(tmp_path: Path) -> None:
    """OpenSearch 3 and Elasticsearch 9 need Java 21+: a JAVA_HOME setting that does not point
    at one is refused before anything is fetched, naming the setting and what it needs."""
    home = tmp_path / "not-a-jdk"
    home.mkdir()
    line = start_fails(
        OPENSEARCH_SCRIPT,
        tmp_path / "os",
        "--version",
        "3",
        env={"IMAGEDEX_OPENSEARCH_JAVA_HOME": str(home)},
    )
    assert line == (
        f"opensearch.sh: error: IMAGEDEX_OPENSEARCH_JAVA_HOME={home} is not a JDK 21+ with "
        "javac (needed by OpenSearch 3.5.0); found: none"
    )
    line = start_fails(
        ELASTICSEARCH_SCRIPT,
        tmp_path / "es",
        "--version",
        "9",
        env={"IMAGEDEX_ELASTICSEARCH_JAVA_HOME": str(home)},
    )
    assert f"IMAGEDEX_ELASTICSEARCH_JAVA_HOME={home} is not a JDK 21+" in line
