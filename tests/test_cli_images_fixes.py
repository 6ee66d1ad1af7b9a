"""The collection commands for people: ids in the search table and never cut, `show` that does
not pick one of several images silently, option names in date errors, and a word for a label
that no image has."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from PIL import Image

from cli_helpers import cli_json, imagedex_env, run_cli

COPIES = ("c1", "c2", "c3", "c4")


@pytest.fixture(scope="module")
def collection(photo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Four different photos of a cat, each called pic.jpg, in four folders."""
    root = tmp_path_factory.mktemp("cards")
    cat = Image.open(photo_dir / "chelsea.jpg").convert("RGB")
    for quality, folder in zip((60, 70, 80, 90), COPIES, strict=True):
        buf = io.BytesIO()
        cat.save(buf, "JPEG", quality=quality)
        (root / folder).mkdir()
        (root / folder / "pic.jpg").write_bytes(buf.getvalue())
    env = imagedex_env(root / "data", IMAGEDEX_RECOGNIZERS="imagenet")
    paths = [str(root / folder / "pic.jpg") for folder in COPIES]
    assert cli_json(env, "ingest", *paths, "--wait", "--timeout", "120")["indexed"] == 4
    return env


def ids_of(env: dict[str, str]) -> set[str]:
    return {hit["id"] for hit in cli_json(env, "search")["hits"]}


@pytest.mark.parametrize("columns", ["120", "80", "60", "40", "20"])
def test_search_table_shows_whole_ids_at_any_width(
    collection: dict[str, str], columns: str
) -> None:
    env = {**collection, "COLUMNS": columns}
    printed = run_cli(env, "search", "--label", "cat").stdout
    ids = ids_of(collection)
    assert len(ids) == 4
    whole = set(re.findall(r"\b[0-9a-f]{32}\b", printed))
    assert whole == ids, printed
    assert "pic.jpg" in printed
    for folder in COPIES:
        assert f"{folder}/pic.jpg" in printed  # the key tells the four apart


def test_show_lists_the_images_sharing_a_title(collection: dict[str, str]) -> None:
    proc = run_cli(collection, "show", "pic.jpg", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert set(re.findall(r"\b[0-9a-f]{32}\b", proc.stdout)) == ids_of(collection)
    assert "4 images have the key or title 'pic.jpg'" in proc.stderr
    listed = run_cli(collection, "show", "pic.jpg", "--json", check=False)
    assert listed.returncode == 1
    assert {m["key"] for m in json.loads(listed.stdout)["matches"]} == {
        f"{folder}/pic.jpg" for folder in COPIES
    }
    # an id or a key names one
    one = cli_json(collection, "show", "c2/pic.jpg")
    assert one["key"] == "c2/pic.jpg"
    assert cli_json(collection, "show", one["id"])["key"] == "c2/pic.jpg"


def test_date_errors_name_the_option(collection: dict[str, str]) -> None:
    proc = run_cli(collection, "search", "--after", "notadate", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "'--after'" in proc.stderr and "notadate" in proc.stderr
    assert "2026-01-31" in proc.stderr and "date_from" not in proc.stderr
    swapped = run_cli(
        collection, "search", "--after", "2026-03-01", "--before", "2026-02-01", check=False
    )
    assert swapped.returncode == 2
    assert "--after" in swapped.stderr and "--before" in swapped.stderr
    assert "date_from" not in swapped.stderr and "date_to" not in swapped.stderr


def test_a_label_no_image_has_is_said_so(collection: dict[str, str]) -> None:
    proc = run_cli(collection, "search", "--label", "unicorn")
    assert proc.stdout == ""
    assert "no image has the label 'unicorn'" in proc.stderr
    typo = run_cli(collection, "search", "--label", "catt").stderr
    assert "no image has the label 'catt'" in typo and "Cat" in typo
    # a label some image has, in a search nothing matches: no claim about the label
    none = run_cli(collection, "search", "--label", "cat", "--after", "2999-01-01")
    assert none.stdout == "" and "no image matches" in none.stderr
    assert cli_json(collection, "search", "--label", "unicorn")["total"] == 0
