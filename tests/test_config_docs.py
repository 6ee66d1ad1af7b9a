"""docs/configuration.md names every setting and the environment variable that sets it."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from imagedex.config import ENV_PREFIX, Settings

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
SETTINGS = [f.name for f in fields(Settings)]


def _doc_text() -> str:
    # Markdown may escape underscores (`IMAGEDEX\_DATA\_DIR`): read the text as rendered.
    return re.sub(r"\\([_*`\\])", r"\1", DOC.read_text(encoding="utf-8"))


def _mentions(text: str, word: str) -> bool:
    """`word` stands in `text` on its own: in backticks, a table cell, a list or prose, but not
    as part of a longer name (`index` inside `index_replicas` does not count)."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(word)}(?![A-Za-z0-9_])", text) is not None


@pytest.fixture(scope="module")
def doc_text() -> str:
    return _doc_text()


@pytest.mark.parametrize("name", SETTINGS)
def test_every_setting_is_documented(doc_text: str, name: str) -> None:
    assert _mentions(doc_text, name), f"setting {name!r} is missing from {DOC.name}"


@pytest.mark.parametrize("name", SETTINGS)
def test_every_setting_has_its_environment_variable_documented(doc_text: str, name: str) -> None:
    env = ENV_PREFIX + name.upper()
    assert _mentions(doc_text, env), f"{env} (setting {name!r}) is missing from {DOC.name}"


def test_the_check_sees_a_missing_setting() -> None:
    text = "| `index_replicas` | `IMAGEDEX_INDEX_REPLICAS` | `0` | replicas |"
    assert _mentions(text, "index_replicas") and _mentions(text, "IMAGEDEX_INDEX_REPLICAS")
    assert not _mentions(text, "index") and not _mentions(text, "IMAGEDEX_INDEX")
