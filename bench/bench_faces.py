"""Face detectors compared on the packaged photos: faces found, false faces, time per image.

Candidates: the Haar analyzer imagedex used before (OpenCV frontal-face cascade, skin gate and
eye check: ``HaarFaceDetector`` behind ``may_contain_faces``), the BlazeFace back-camera model
(256 px) on the whole image only and with tiles (``FaceDetector``, the shipped ``faces``
analyzer), and, when ``--front-model`` names it (``tools/build_face_detector_onnx.py --variant
front``), the 128 px short-range BlazeFace, MediaPipe's short-range network.

Photos (``bench/labelled_photos.py``): the ones with faces, whose face counts below were written
by looking at each photo (the face-api demo samples are group photos of 3-5 people; the
face_recognition photos include two faces cut by the frame), and every other photo of the
manifest, where any face is a false face (animals, objects, landscapes). ``human/*`` demo
screenshots are left out: they are collages with face meshes drawn over the faces. The "small"
rows put each face photo at a third of its size on a 1920x1280 grey canvas (faces of 15-60 px in
a large image). Found counts per photo are capped at the faces present and extra detections on a
face photo count as false faces (no boxes were drawn by hand, so a false face beside a missed
one is not seen).

    python bench/bench_faces.py                 # writes the 'faces' section of docs/benchmarks.md
    python bench/bench_faces.py --quick         # face photos and 10 others, docs untouched
    python bench/bench_faces.py --front-model /tmp/faces/blazeface_front.onnx
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
from imagedex.recognition.face_detection import FaceDetector
from imagedex.recognition.faces import HaarFaceDetector, may_contain_faces
from labelled_photos import photos

# Faces present, counted by eye (every face with at least one eye visible).
FACES = {
    "face-api/sample1": 3,
    "face-api/sample2": 3,
    "face-api/sample3": 3,
    "face-api/sample4": 4,
    "face-api/sample5": 5,
    "face-api/sample6": 4,
    "face_recognition/obama": 1,
    "face_recognition/obama2": 1,
    "face_recognition/obama3": 1,
    "face_recognition/biden": 1,
    "face_recognition/obama_partial_face": 1,  # cut by the frame
    "face_recognition/obama_partial_face2": 1,  # cut by the frame
    "matplotlib/grace_hopper": 1,
    "skimage/astronaut": 1,
    "skimage/camera": 1,  # grayscale, face in profile behind a camera
    "opencv/messi5": 1,  # a footballer; the blurred crowd behind him is not counted
}
SKIP_SOURCES = ("human/",)

Detect = Callable[[Image.Image], int]


@dataclass
class Tally:
    found: int = 0
    present: int = 0
    false_faces: int = 0
    false_photos: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def add(self, photo_id: str, count: int, present: int, seconds: float) -> None:
        self.found += min(count, present)
        self.present += present
        extra = max(count - present, 0)
        self.false_faces += extra
        if extra:
            self.false_photos.append(photo_id)
        self.seconds.append(seconds)


def haar() -> Detect:
    detector = HaarFaceDetector()
    return lambda image: len(detector.detect(image)) if may_contain_faces(image) else 0


def blazeface(tiles: int, min_confidence: float, model: Path | None = None) -> Detect:
    detector = FaceDetector(tiles=tiles, min_confidence=min_confidence, model=model)
    return lambda image: len(detector.detect(image))


def small_copy(image: Image.Image) -> Image.Image:
    """The photo at a third of its size on a 1920x1280 grey canvas."""
    part = image.resize((max(1, image.width // 3), max(1, image.height // 3)), Image.LANCZOS)
    canvas = Image.new("RGB", (1920, 1280), (128, 128, 128))
    canvas.paste(part, ((1920 - part.width) // 2, (1280 - part.height) // 2))
    return canvas


def run(detect: Detect, images: list[tuple[str, Image.Image, int]]) -> Tally:
    detect(images[0][1])  # load the model outside the timing
    tally = Tally()
    for photo_id, image, present in images:
        start = time.perf_counter()
        count = detect(image)
        tally.add(photo_id, count, present, time.perf_counter() - start)
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = common.arg_parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer photos, docs untouched")
    parser.add_argument("--front-model", type=Path, help="blazeface_front.onnx to compare too")
    common.add_write_options(parser)
    args = parser.parse_args(argv)

    with_faces: list[tuple[str, Image.Image, int]] = []
    without: list[tuple[str, Image.Image, int]] = []
    for photo_id, image, _expected in photos():
        if photo_id.startswith(SKIP_SOURCES):
            continue
        if photo_id in FACES:
            with_faces.append((photo_id, image, FACES[photo_id]))
        elif not args.quick or len(without) < 10:
            without.append((photo_id, image, 0))
    small = [(f"{p} (small)", small_copy(im), n) for p, im, n in with_faces]

    candidates: list[tuple[str, Detect]] = [
        ("Haar cascade + eye check (before)", haar()),
        ("BlazeFace back, whole image, >= 80 %", blazeface(0, 80.0)),
        ("BlazeFace back, tiles, >= 50 %", blazeface(3, 50.0)),
        ("BlazeFace back, tiles, >= 75 %", blazeface(3, 75.0)),
        ("BlazeFace back, tiles, >= 80 % (shipped)", blazeface(3, 80.0)),
    ]
    if args.front_model is not None:
        candidates.append(("BlazeFace front 128 px, >= 80 %", blazeface(0, 80.0, args.front_model)))

    rows = []
    for name, detect in candidates:
        common.log(f"{name} ...")
        faces, tiny, others = run(detect, with_faces), run(detect, small), run(detect, without)
        times = faces.seconds + others.seconds
        rows.append(
            [
                name,
                common.fmt_count(faces.found, faces.present),
                common.fmt_count(tiny.found, tiny.present),
                str(faces.false_faces + tiny.false_faces),
                f"{others.false_faces} on {len(others.false_photos)}/{len(without)}",
                common.fmt_ms(1000 * statistics.median(times)),
                common.fmt_ms(1000 * max(times)),
            ]
        )
        if others.false_photos:
            common.log("   false faces on:", ", ".join(others.false_photos))
    headers = [
        "detector",
        "faces found",
        "small faces found",
        "extra faces on face photos",
        "false faces on other photos",
        "median ms/image",
        "max ms/image",
    ]
    print(common.md_table(headers, rows))
    text = "\n\n".join(
        [
            "## Faces: detectors compared (`bench/bench_faces.py`)",
            f"{len(with_faces)} photos with {sum(n for _, _, n in with_faces)} faces (counted by "
            "eye; group photos, two faces cut by the frame, a grayscale profile), the same "
            f"at a third of their size on a 1920x1280 canvas (small faces), and {len(without)} "
            "photos without people (animals, objects, landscapes). Times: one image at a time, "
            "already decoded, the model loaded.",
            common.md_table(headers, rows),
            common.machine_markdown(),
        ]
    )
    if common.should_write(args):
        common.publish("faces", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
