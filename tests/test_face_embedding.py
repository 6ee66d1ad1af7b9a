"""The packaged face descriptor (dlib's ResNet rebuilt in ONNX) and its alignment, on real photos:
face_recognition 1.3.0's test photos (Obama, Biden; fetched once by bench/labelled_photos.py
into its cache) and matplotlib's Grace Hopper, with eyes measured by OpenCV's cascades."""

from __future__ import annotations

import hashlib
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from imagedex.errors import RecognitionError
from imagedex.recognition.face_embedding import (
    CHIP_SIZE,
    SAME_PERSON_DISTANCE,
    FaceEmbedder,
    align_face,
    distance,
    distances,
    eye_points,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from face_eyes import eye_faces
from labelled_photos import photos

REPO = Path(__file__).resolve().parents[1]
PEOPLE = {"obama": "obama", "obama2": "obama", "obama3": "obama", "biden": "biden"}


@pytest.fixture(scope="module")
def embedder() -> FaceEmbedder:
    return FaceEmbedder(threads=2)


@pytest.fixture(scope="module")
def portraits() -> dict[str, Image.Image]:
    found = {
        photo_id.split("/")[1]: image
        for photo_id, image, _ in photos(sources=["face_recognition"])
        if photo_id.split("/")[1] in PEOPLE
    }
    import matplotlib

    with Image.open(
        Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    ) as hopper:
        found["grace_hopper"] = hopper.convert("RGB")
    return found


def one_face(image: Image.Image) -> dict:
    faces = eye_faces(image)
    assert faces, "no face with two eyes found"
    return faces[0]


def descriptor(embedder: FaceEmbedder, image: Image.Image) -> np.ndarray:
    return embedder.embed(image, [one_face(image)])[0]


def test_same_person_under_and_different_people_over_dlibs_threshold(
    embedder: FaceEmbedder, portraits: dict[str, Image.Image]
) -> None:
    names = sorted(portraits)
    vectors = np.stack([descriptor(embedder, portraits[name]) for name in names])
    assert vectors.shape == (len(names), 128) and vectors.dtype == np.float32
    table = distances(vectors, vectors)
    for i, a in enumerate(names):
        for j, b in enumerate(names[i + 1 :], i + 1):
            same = PEOPLE.get(a, a) == PEOPLE.get(b, b)
            d = table[i, j]
            assert math.isclose(d, distance(vectors[i], vectors[j]), rel_tol=1e-6)
            if same:
                assert d < SAME_PERSON_DISTANCE - 0.1, f"{a} / {b}: {d:.3f}"
            else:
                assert d > SAME_PERSON_DISTANCE + 0.1, f"{a} / {b}: {d:.3f}"


def test_altered_copies_stay_the_same_person(
    embedder: FaceEmbedder, portraits: dict[str, Image.Image]
) -> None:
    original = portraits["obama"]
    reference = descriptor(embedder, original)
    biden = descriptor(embedder, portraits["biden"])
    w, h = original.size
    altered = {
        "mirrored": ImageOps.mirror(original),
        "cropped to the head": original.crop((int(0.3 * w), 0, int(0.8 * w), int(0.45 * h))),
        "darker": ImageEnhance.Brightness(original).enhance(0.5),
        "brighter": ImageEnhance.Brightness(original).enhance(1.5),
        "a third of the size": original.resize((w // 3, h // 3), Image.Resampling.LANCZOS),
        "turned 20 degrees": original.rotate(20, resample=Image.Resampling.BICUBIC, expand=True),
    }
    for what, image in altered.items():
        d = distance(descriptor(embedder, image), reference)
        assert d < 0.4, f"{what}: {d:.3f} from the original"
        assert distance(descriptor(embedder, image), biden) > SAME_PERSON_DISTANCE, what


def test_alignment_puts_the_eyes_on_dlibs_template() -> None:
    # a tilted "face": two dots at known places in a large image, so the chip is reduced first
    image = Image.new("RGB", (1600, 1200), "gray")
    draw = ImageDraw.Draw(image)
    left, right = (500.0, 700.0), (900.0, 500.0)  # tilted by atan(200/400) = 26.6 degrees
    for x, y in (left, right):
        draw.ellipse((x - 12, y - 12, x + 12, y + 12), fill="white")
    chip = np.asarray(align_face(image, left, right).convert("L"), dtype=np.float64)
    assert chip.shape == (CHIP_SIZE, CHIP_SIZE)
    bright = chip > 200
    ys, xs = np.nonzero(bright)
    left_half = xs < CHIP_SIZE / 2
    found_left = (xs[left_half].mean(), ys[left_half].mean())
    found_right = (xs[~left_half].mean(), ys[~left_half].mean())
    # dlib's template eye centres in a 150 px chip padded by 0.25
    assert found_left == pytest.approx((47.7, 47.1), abs=1.0)
    assert found_right == pytest.approx((100.3, 47.1), abs=1.0)


def test_a_turned_face_is_turned_upright_by_its_eye_names(
    embedder: FaceEmbedder, portraits: dict[str, Image.Image]
) -> None:
    original = portraits["obama"]
    face = one_face(original)
    upside_down = original.rotate(180)
    (lx, ly), (rx, ry) = eye_points(face)
    turned = {"landmarks": {"left_eye": (1 - lx, 1 - ly), "right_eye": (1 - rx, 1 - ry)}}
    upright, flipped = embedder.embed(original, [face])[0], embedder.embed(upside_down, [turned])[0]
    assert distance(upright, flipped) < 0.1


def test_faces_in_any_shape_and_bad_faces(embedder: FaceEmbedder) -> None:
    image = Image.new("RGB", (200, 200), "white")
    eyes = {"left_eye": (0.35, 0.4), "right_eye": (0.65, 0.4)}
    as_dict = embedder.embed(image, [{"bbox": {}, "landmarks": eyes}])
    as_xy = embedder.embed(
        image, [{"landmarks": {k: {"x": x, "y": y} for k, (x, y) in eyes.items()}}]
    )
    assert np.allclose(as_dict, as_xy)
    assert embedder.embed(image, []).shape == (0, 128)
    # eyes wholly outside the image give a black chip, not an error
    outside = embedder.embed(image, [{"landmarks": {"left_eye": (5, 5), "right_eye": (6, 5)}}])
    assert outside.shape == (1, 128) and np.isfinite(outside).all()
    with pytest.raises(ValueError, match="needs landmarks 'left_eye' and 'right_eye'"):
        embedder.embed(image, [{"bbox": {"left": 0.1}}])
    with pytest.raises(ValueError, match="cannot be at the same point"):
        embedder.embed(image, [{"landmarks": {"left_eye": (0.5, 0.5), "right_eye": (0.5, 0.5)}}])
    with pytest.raises(ValueError, match="must be finite"):
        embedder.embed(image, [{"landmarks": {"left_eye": (math.nan, 0), "right_eye": (1, 0)}}])
    with pytest.raises(RecognitionError, match="empty"):
        embedder.embed(Image.new("RGB", (0, 0)), [{"landmarks": eyes}])
    with pytest.raises(ValueError, match="128 numbers"):
        distance(np.zeros(3), np.zeros(3))


def test_the_build_reproduces_the_shipped_model(tmp_path: Path) -> None:
    # fetches @vladmandic/face-api with `npm pack` into the tools cache when it is not there
    sys.path.insert(0, str(REPO / "tools"))
    from build_face_embedding_onnx import main

    out = tmp_path / "face_descriptor.onnx"
    assert main(["--out", str(out)]) == 0
    shipped = REPO / "src/imagedex/recognition/models/face_descriptor.onnx"
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert digest == hashlib.sha256(shipped.read_bytes()).hexdigest()
