"""Corrections and labels taught by example (issue 16): the real worker indexes images with a
small deterministic analyzer that also gives each image a visual embedding from its colour; the
real `imagedex` command teaches and corrects in a subprocess on the same data dir."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli_helpers import cli_json, imagedex_env, run_cli
from conftest import png
from imagedex.documents import Label, SearchQuery
from imagedex.ingest.upload import upload_bytes
from imagedex.ingest.worker import Worker
from imagedex.recognition.base import Analysis, Analyzer
from imagedex.services import Services

DIM = 1280


class ColourLooks(Analyzer):
    """Labels by the dominant colour; the visual embedding points one way per colour, with a
    little spread from the exact shade, as a real embedding of alike photos would."""

    name = "test-looks"
    version = "1"

    def analyze_images(self, images: Sequence[Image.Image]) -> list[Analysis]:
        results = []
        for image in images:
            rgb = np.asarray(image.convert("RGB"), dtype=np.float32).mean(axis=(0, 1))
            channel = int(np.argmax(rgb))
            name = ("red", "green", "blue")[channel]
            vector = np.zeros(DIM, dtype=np.float32)
            vector[channel] = 1.0
            vector[3 + int(rgb.sum()) % 50] = 0.3  # the shade
            vector /= np.linalg.norm(vector)
            results.append(
                Analysis(labels=[Label(name, 90.0, ("colour",))], visual_embedding=vector.tolist())
            )
        return results


class ColourLooksV2(ColourLooks):
    version = "2"  # a model change: every image is analysed again


def ingest(services: Services, recognizer: Analyzer | None = None) -> None:
    Worker(services, recognizers=[recognizer or ColourLooks()]).run(once=True)


SHADES = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}


def upload(services: Services, key: str, colour: str, shade: int) -> str:
    r, g, b = SHADES[colour]
    tint = (min(255, r + shade), min(255, g + shade), min(255, b + shade))
    if colour == "red":
        tint = (255, shade, shade)
    return upload_bytes(services, key, png(tint)).doc_id


def labels_of(services: Services, doc_id: str) -> dict[str, float]:
    doc = services.index.get(doc_id)
    assert doc is not None
    return {lb.label: lb.confidence for lb in doc.labels}


def test_corrections_survive_reprocess_and_model_changes(services: Services) -> None:
    red = upload(services, "red.png", "red", 0)
    ingest(services)
    assert "red" in labels_of(services, red)
    env = imagedex_env(services.settings.data_dir)

    removed = cli_json(env, "tag", "remove", "red.png", "red")
    assert removed["was_present"] and "red" not in removed["labels"]
    added = cli_json(env, "tag", "add", red, "dog")  # the vocabulary's spelling and parents
    assert "Dog" in added["labels"]
    assert "red" not in labels_of(services, red)
    assert labels_of(services, red)["Dog"] == 100.0
    found = services.index.search(SearchQuery(labels=("animal",)))
    assert [d.id for d in found.documents] == [red]  # the person's label is found by its parents
    listed = cli_json(env, "tag", "list", red)
    assert {"label": "Dog", "confidence": 100.0, "source": "person"} in listed["labels"]
    assert listed["removed"] == ["red"]

    upload_bytes(services, "red.png", png((250, 0, 0)))  # a new version of the object
    ingest(services, ColourLooksV2())  # and a new model
    after = labels_of(services, red)
    assert "red" not in after and after["Dog"] == 100.0
    assert services.index.search(SearchQuery(labels=("red",))).total == 0


def test_a_taught_label_applies_to_the_collection_new_images_and_learns_from_corrections(
    services: Services,
) -> None:
    reds = [upload(services, f"r{n}.png", "red", 5 * n) for n in range(6)]
    blues = [upload(services, f"b{n}.png", "blue", 5 * n) for n in range(6)]
    greens = [upload(services, f"g{n}.png", "green", 5 * n) for n in range(6)]
    ingest(services)
    env = imagedex_env(services.settings.data_dir)

    taught = cli_json(env, "custom", "teach", "Scarlet Line", reds[0], "r1.png", reds[2])
    # the other reds are in the negatives sampled from the collection: a pessimistic estimate
    assert taught["examples"] == 3 and 0.3 <= taught["precision"] <= 1.0
    assert taught["applying"] == {"state": "done", "done": 18, "total": 18}
    hits = services.index.search(SearchQuery(labels=("scarlet line",), limit=50))
    assert sorted(d.id for d in hits.documents) == sorted(reds)
    assert all(50 <= labels_of(services, r)["Scarlet Line"] <= 100 for r in reds)
    facets = services.index.facets(SearchQuery())
    assert ("Scarlet Line", 6) in [(c.label, c.count) for c in facets.labels]
    listed = cli_json(env, "custom", "list")["labels"]
    assert [(x["name"], x["examples"]) for x in listed] == [("Scarlet Line", 3)]
    assert {"label": "Scarlet Line", "source": "custom"}.items() <= next(
        lb
        for lb in cli_json(env, "tag", "list", reds[4])["labels"]
        if lb["label"] == "Scarlet Line"
    ).items()

    new = upload(services, "r-new.png", "red", 40)  # ingested after teaching
    other = upload(services, "b-new.png", "blue", 40)
    ingest(services)
    assert "Scarlet Line" in labels_of(services, new)
    assert "Scarlet Line" not in labels_of(services, other)

    # a correction of a taught label: a negative example; retrained, and it stays off
    cli_json(env, "tag", "remove", reds[5], "Scarlet Line")
    shown = cli_json(env, "custom", "show", "Scarlet Line")
    assert shown["negative_examples"] == [reds[5]]
    assert "Scarlet Line" not in labels_of(services, reds[5])
    cli_json(env, "tag", "add", blues[0], "Scarlet Line")
    assert cli_json(env, "custom", "show", "Scarlet Line")["examples"] == 4
    assert labels_of(services, blues[0])["Scarlet Line"] == 100.0

    # adding examples retrains
    more = cli_json(env, "custom", "teach", "scarlet line", reds[3])
    assert more["name"] == "Scarlet Line" and more["examples"] == 5

    gone = cli_json(env, "custom", "forget", "Scarlet Line")
    assert gone["images_changed"] >= 6
    assert services.index.search(SearchQuery(labels=("scarlet line",))).total == 1  # the person's
    assert cli_json(env, "custom", "list")["labels"] == []
    assert all("red" in labels_of(services, r) for r in reds[:5])
    assert greens  # untouched throughout
    assert all(labels_of(services, g) == {"green": 90.0} for g in greens)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["custom", "teach", "Widget", "r0.png"], "at least 3 example images"),
        (["custom", "teach", "Widget", "r0.png", "r0.png", "r0.png"], "at least 3"),
        (["custom", "teach", "Widget", "r0.png", "r1.png", "NOTES"], "not an image"),
        (["custom", "teach", "Widget", "r0.png", "r1.png", "nowhere"], "neither an indexed"),
        (["custom", "teach", "Dog", "r0.png", "r1.png", "r2.png"], "analyzers already give"),
        (["custom", "teach", "Puppy", "r0.png", "r1.png", "r2.png"], "analyzers already give"),
        (["custom", "teach", "Widget", "r0.png", "r1.png", "r2.png", "g0.png"], "contradicts"),
        (["custom", "teach", "  ", "r0.png", "r1.png", "r2.png"], "blank"),
        (["custom", "show", "Nothing"], "no taught label"),
        (["custom", "forget", "Nothing"], "no taught label"),
        (["tag", "add", "nowhere.png", "Widget"], "no indexed image"),
    ],
)
def test_bad_input_gets_one_line_and_loses_nothing(
    services: Services, tmp_path: Path, args: list[str], says: str
) -> None:
    for n in range(3):
        upload(services, f"r{n}.png", "red", 5 * n)
    upload(services, "g0.png", "green", 0)
    ingest(services)
    env = imagedex_env(services.settings.data_dir)
    run_cli(env, "tag", "remove", "g0.png", "Widget")  # a person said: g0 is no Widget
    notes = tmp_path / "NOTES"
    notes.write_text("not an image\n")
    before = {d.id: d.labels for d in services.index.iter_documents()}
    answer = run_cli(env, *[str(notes) if a == "NOTES" else a for a in args], check=False)
    assert answer.returncode == 2, answer.stdout + answer.stderr
    assert says in answer.stderr and "Traceback" not in answer.stderr
    assert answer.stderr.count("rror") == 1  # one message (rich wraps it at 80 columns)
    assert {d.id: d.labels for d in services.index.iter_documents()} == before
    assert cli_json(env, "custom", "list")["labels"] == []
