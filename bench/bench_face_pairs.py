"""Face pairs: does the packaged face descriptor (dlib's ResNet rebuilt in ONNX,
`imagedex.recognition.face_embedding`) reproduce dlib's behaviour, same person under 0.6 and
different people above?

* labelled faces: face_recognition 1.3.0's test photos (Obama x3, Biden) and matplotlib's Grace
  Hopper, each also altered (mirrored, cropped to the head, darker, brighter, a third of the size,
  turned 20 degrees, JPEG quality 20); every pair of two faces is "same" when both show one
  person;
* unlabelled group photos: `@vladmandic/face-api`'s demo samples and `@vladmandic/human`'s
  samples; two faces in one photo are different people, so every such pair must be over 0.6;
* alignment layouts, each on the same faces: dlib's chip (eyes on its 5-point template, padding
  0.25: shipped), the same with padding 0.1 and 0.4, and face-api's own input (the detector's box,
  padded to a square and resized to 150, not turned);
* cost: ms per face of alignment and of the model, batch 1 and 8, 2 onnxruntime threads.

Eyes come from OpenCV's cascades inside imagedex's Haar face boxes (`tests/face_eyes.py`), until a
detector gives eye keypoints. Photos are fetched once by `bench/labelled_photos.py`.

    python bench/bench_face_pairs.py            # writes the 'face-pairs' section of benchmarks.md
    python bench/bench_face_pairs.py --quick    # originals only, no write
"""

from __future__ import annotations

import io
import itertools
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import common
from face_eyes import eye_faces
from imagedex.recognition.face_embedding import (
    CHIP_SIZE,
    SAME_PERSON_DISTANCE,
    FaceEmbedder,
    align_face,
    distances,
)
from labelled_photos import photos

PEOPLE = {
    "face_recognition/obama": "Obama",
    "face_recognition/obama2": "Obama",
    "face_recognition/obama3": "Obama",
    "face_recognition/biden": "Biden",
    "matplotlib/grace_hopper": "Hopper",
}
GROUP_SOURCES = ["face-api", "human"]


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _head(image: Image.Image, face: dict[str, Any]) -> Image.Image:
    """The face box grown by half its size on each side (a tight crop that cuts the body)."""
    box = face["bbox"]
    w, h = image.size
    left, top = (box["left"] - box["width"] / 2) * w, (box["top"] - box["height"] / 2) * h
    right = (box["left"] + 1.5 * box["width"]) * w
    bottom = (box["top"] + 1.5 * box["height"]) * h
    return image.crop(
        (max(0, int(left)), max(0, int(top)), min(w, int(right)), min(h, int(bottom)))
    )


ALTERATIONS: dict[str, Callable[[Image.Image, dict[str, Any]], Image.Image]] = {
    "mirrored": lambda im, _f: ImageOps.mirror(im),
    "head crop": _head,
    "darker": lambda im, _f: ImageEnhance.Brightness(im).enhance(0.5),
    "brighter": lambda im, _f: ImageEnhance.Brightness(im).enhance(1.5),
    "1/3 size": lambda im, _f: im.resize((im.width // 3, im.height // 3), Image.Resampling.LANCZOS),
    "turned 20°": lambda im, _f: im.rotate(20, resample=Image.Resampling.BICUBIC, expand=True),
    "JPEG q20": lambda im, _f: _jpeg(im, 20),
}


@dataclass
class Face:
    name: str  # photo id, with the alteration
    person: str  # who it is; for group photos "photo id#n" (unknown, but not the others in it)
    photo: str
    image: Image.Image
    face: dict[str, Any]


def labelled_faces(quick: bool) -> tuple[list[Face], list[str]]:
    """The labelled faces and the copies whose face was not found again."""
    import matplotlib

    found: list[Face] = []
    lost: list[str] = []
    images = {pid: im for pid, im, _ in photos(sources=["face_recognition"]) if pid in PEOPLE}
    with Image.open(
        Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    ) as hopper:
        images["matplotlib/grace_hopper"] = hopper.convert("RGB")
    for pid, image in images.items():
        faces = eye_faces(image)
        if not faces:
            lost.append(pid)
            continue
        found.append(Face(pid, PEOPLE[pid], pid, image, faces[0]))
        for what, alter in ({} if quick else ALTERATIONS).items():
            copy = alter(image, faces[0])
            copy_faces = eye_faces(copy)
            if copy_faces:
                found.append(Face(f"{pid} {what}", PEOPLE[pid], pid, copy, copy_faces[0]))
            else:
                lost.append(f"{pid} {what}")
    return found, lost


def group_faces() -> list[Face]:
    found = []
    for pid, image, _ in photos(sources=GROUP_SOURCES, kinds=["photo"]):
        for n, face in enumerate(eye_faces(image)):
            found.append(Face(f"{pid}#{n}", f"{pid}#{n}", pid, image, face))
    return found


def facebox_chip(image: Image.Image, face: dict[str, Any]) -> Image.Image:
    """face-api's input: the detection box padded to a square (centred) and resized to 150."""
    box = face["bbox"]
    w, h = image.size
    left, top, bw, bh = box["left"] * w, box["top"] * h, box["width"] * w, box["height"] * h
    side = max(bw, bh)
    cx, cy = left + bw / 2, top + bh / 2
    crop = image.crop(
        (int(cx - side / 2), int(cy - side / 2), int(cx + side / 2), int(cy + side / 2))
    )
    return crop.resize((CHIP_SIZE, CHIP_SIZE), Image.Resampling.BILINEAR)


def dlib_chip(padding: float) -> Callable[[Image.Image, dict[str, Any]], Image.Image]:
    def chip(image: Image.Image, face: dict[str, Any]) -> Image.Image:
        marks = face["landmarks"]
        w, h = image.size
        left = (marks["left_eye"][0] * w, marks["left_eye"][1] * h)
        right = (marks["right_eye"][0] * w, marks["right_eye"][1] * h)
        return align_face(image, left, right, padding=padding)

    return chip


LAYOUTS: dict[str, Callable[[Image.Image, dict[str, Any]], Image.Image]] = {
    "dlib chip, padding 0.25 (shipped)": dlib_chip(0.25),
    "dlib chip, padding 0.1": dlib_chip(0.1),
    "dlib chip, padding 0.4": dlib_chip(0.4),
    "face-api: detector box, square, not turned": facebox_chip,
}


@dataclass
class PairStats:
    same: list[float]
    different: list[float]

    def correct(self, threshold: float = SAME_PERSON_DISTANCE) -> int:
        return sum(d < threshold for d in self.same) + sum(d >= threshold for d in self.different)

    @property
    def total(self) -> int:
        return len(self.same) + len(self.different)


def pair_stats(faces: Sequence[Face], vectors: np.ndarray) -> PairStats:
    table = distances(vectors, vectors)
    same: list[float] = []
    different: list[float] = []
    for i, j in itertools.combinations(range(len(faces)), 2):
        pair = same if faces[i].person == faces[j].person else different
        pair.append(float(table[i, j]))
    return PairStats(same, different)


def group_stats(faces: Sequence[Face], vectors: np.ndarray) -> tuple[list[float], list[float]]:
    """(distances between faces of one photo: different people; between photos: unknown)."""
    table = distances(vectors, vectors)
    within: list[float] = []
    across: list[float] = []
    for i, j in itertools.combinations(range(len(faces)), 2):
        (within if faces[i].photo == faces[j].photo else across).append(float(table[i, j]))
    return within, across


def cost(embedder: FaceEmbedder, faces: Sequence[Face]) -> list[list[str]]:
    rows = []
    for batch in (1, 8):
        group = [faces[i % len(faces)] for i in range(batch)]
        align_s, model_s = [], []
        for _ in range(7):
            start = time.perf_counter()
            chips = [dlib_chip(0.25)(f.image, f.face) for f in group]
            middle = time.perf_counter()
            embedder.embed_chips(chips)
            align_s.append(middle - start)
            model_s.append(time.perf_counter() - middle)
        rows.append(
            [
                f"batch {batch}",
                common.fmt_ms(1000 * statistics.median(align_s) / batch),
                common.fmt_ms(1000 * statistics.median(model_s) / batch),
            ]
        )
    return rows


def fmt(values: Sequence[float]) -> str:
    return f"{min(values):.3f}–{max(values):.3f}" if values else "–"


def main(argv: list[str] | None = None) -> int:
    parser = common.arg_parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="originals only; no write")
    common.add_write_options(parser)
    args = parser.parse_args(argv)
    facts = common.machine_facts()
    embedder = FaceEmbedder(threads=2)

    faces, lost = labelled_faces(args.quick)
    groups = [] if args.quick else group_faces()
    common.log(
        f"{len(faces)} labelled faces ({len(lost)} copies without a face), {len(groups)} in groups"
    )

    layout_rows = []
    shipped: dict[str, Any] = {}
    for layout, make_chip in LAYOUTS.items():
        vectors = embedder.embed_chips([make_chip(f.image, f.face) for f in faces])
        stats = pair_stats(faces, vectors)
        row = [
            layout,
            f"{stats.correct()}/{stats.total}",
            f"{stats.correct(0.5)}/{stats.total}",
            fmt(stats.same),
            fmt(stats.different),
            f"{min(stats.different) - max(stats.same):+.3f}",
        ]
        if groups:
            g_vectors = embedder.embed_chips([make_chip(f.image, f.face) for f in groups])
            within, across = group_stats(groups, g_vectors)
            for threshold in (SAME_PERSON_DISTANCE, 0.5):
                row.append(f"{sum(d >= threshold for d in within)}/{len(within)}")
            shipped.setdefault("groups", (within, across))
        layout_rows.append(row)
        shipped.setdefault("vectors", vectors)  # the first layout is the shipped one
    originals = [i for i, f in enumerate(faces) if f.name == f.photo]
    table = distances(shipped["vectors"][originals], shipped["vectors"][originals])
    names = [faces[i].name.split("/")[1] for i in originals]
    by_alteration = []
    for what in [] if args.quick else ALTERATIONS:
        own: list[float] = []
        other: list[float] = []
        for i, f in enumerate(faces):
            if not f.name.endswith(f" {what}"):
                continue
            for j in originals:
                d = float(np.linalg.norm(shipped["vectors"][i] - shipped["vectors"][j]))
                (own if faces[j].person == f.person else other).append(d)
        by_alteration.append([what, fmt(own), fmt(other)])

    headers = ["layout", "right at 0.6", "at 0.5", "same person", "different people", "margin"]
    if groups:
        headers += ["group photos: pairs ≥ 0.6", "≥ 0.5"]
    parts = [
        "## Face pairs (`bench/bench_face_pairs.py`)",
        "",
        common.machine_markdown(facts),
        "",
        "dlib's 128-d face descriptor rebuilt in ONNX (`recognition/face_embedding.py`) on "
        f"{len(faces)} labelled faces: face_recognition 1.3.0's test photos (Obama ×3, Biden) and "
        "matplotlib's Grace Hopper, each with altered copies (mirrored, head crop, darker, "
        "brighter, 1/3 size, turned 20°, JPEG q20); eyes from OpenCV's cascades inside the Haar "
        "face boxes (`tests/face_eyes.py`). Pairs: "
        f"{len(pair_stats(faces, shipped['vectors']).same)} same person, "
        f"{len(pair_stats(faces, shipped['vectors']).different)} different people. Group photos: "
        f"{len(groups)} faces with two eyes in `@vladmandic/face-api`'s demo samples and "
        "`@vladmandic/human`'s samples (photos only: the demo screenshots show one person "
        "many times); two faces in one photo are two people.",
        "",
        common.md_table(headers, layout_rows),
        "",
        "Distances between the originals (shipped layout; dlib's rule: under 0.6 is one person):",
        "",
        common.md_table(
            ["", *names],
            [[n] + [f"{d:.3f}" for d in row] for n, row in zip(names, table, strict=True)],
        ),
    ]
    if by_alteration:
        parts += [
            "",
            "Altered copies against the originals (shipped layout):",
            "",
            common.md_table(["copy", "to the same person", "to the other people"], by_alteration),
        ]
    if lost:
        parts += [
            "",
            f"Copies whose face or eyes the Haar cascades did not find again: {', '.join(lost)}.",
        ]
    if "groups" in shipped:
        within, across = shipped["groups"]
        parts += [
            "",
            f"Group photos (shipped layout): faces in one photo {fmt(within)} apart "
            f"({sum(d < SAME_PERSON_DISTANCE for d in within)} of {len(within)} pairs under 0.6); "
            f"faces of different photos (identities unlabelled) {fmt(across)}, "
            f"{sum(d < SAME_PERSON_DISTANCE for d in across)} of {len(across)} pairs under 0.6.",
        ]
    parts += [
        "",
        "Cost per face (2 onnxruntime threads; alignment includes reducing large faces):",
        "",
    ]
    parts.append(common.md_table(["", "align, ms", "model, ms"], cost(embedder, faces)))
    markdown = "\n".join(parts)
    print(markdown)
    if common.should_write(args):
        common.publish("face-pairs", markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
