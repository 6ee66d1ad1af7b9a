"""BlazeFace (recognition/face_detection.py) and the faces analyzer on real packaged photos:
keypoints, many faces, small faces, faces cut by the frame, odd image modes, tiny images."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from skimage import data as skimage_data

from imagedex.errors import RecognitionError
from imagedex.recognition.face_detection import DetectedFace, FaceDetector
from imagedex.recognition.faces import FaceAnalyzer

# The astronaut's face in the 512x512 photo, pixels (measured by eye: x 167-255, y 62-150).
FACE_BOX = (167, 62, 255, 150)


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


def _astronaut() -> Image.Image:
    return Image.fromarray(skimage_data.astronaut()).convert("RGB")


def _hopper() -> Image.Image:
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return Image.open(path).convert("RGB")


def _face_crop(size: int) -> Image.Image:
    """The astronaut's head and shoulders, `size` px square."""
    return _astronaut().crop((140, 30, 285, 175)).resize((size, size), Image.Resampling.LANCZOS)


def _inside(face: DetectedFace, x: float, y: float) -> bool:
    return face.left <= x <= face.left + face.width and face.top <= y <= face.top + face.height


def test_keypoints_of_a_frontal_face(detector: FaceDetector) -> None:
    (face,) = detector.detect(_astronaut())
    assert set(face.landmarks) == {
        "left_eye",
        "right_eye",
        "nose",
        "mouth",
        "left_ear",
        "right_ear",
    }
    (lx, ly), (rx, ry) = face.landmarks["left_eye"], face.landmarks["right_eye"]
    left, top, right, bottom = (v / 512 for v in FACE_BOX)
    assert left < lx < rx < right  # left_eye is the viewer's left
    assert top < ly < bottom and top < ry < bottom
    nose_y, mouth_y = face.landmarks["nose"][1], face.landmarks["mouth"][1]
    assert max(ly, ry) < nose_y < mouth_y < bottom  # eyes above the nose above the mouth
    assert face.left >= 0.0 and face.left + face.width <= 1.0
    document = face.to_dict()
    assert document["landmarks"]["left_eye"] == {"x": round(lx, 5), "y": round(ly, 5)}
    assert set(document) == {"bbox", "confidence", "landmarks"}


def test_mirrored_face_keeps_viewer_side_names(detector: FaceDetector) -> None:
    (face,) = detector.detect(_astronaut().transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    assert face.landmarks["left_eye"][0] < face.landmarks["right_eye"][0]


def test_sixty_faces_each_found_once() -> None:
    # 60 heads of 96 px in a 10x6 grid on a 1500x900 wall: the whole-image pass sees the faces
    # at about 10 model pixels, too small; the tiles find them.
    crop = _face_crop(96)
    wall = Image.new("RGB", (1500, 900), (120, 120, 120))
    centres = []
    for row in range(6):
        for column in range(10):
            x, y = 27 + column * 150, 27 + row * 150
            wall.paste(crop, (x, y))
            centres.append(((x + 48) / 1500, (y + 45) / 900))
    faces = FaceDetector().detect(wall)
    assert len(FaceDetector(tiles=0).detect(wall)) < 10
    assert 57 <= len(faces) <= 60
    for x, y in centres:  # no face counted twice
        assert sum(_inside(f, x, y) for f in faces) <= 1
    for face in faces:  # and none on the wall between them
        cx, cy = face.left + face.width / 2, face.top + face.height / 2
        assert min(abs(cx - x) + abs(cy - y) for x, y in centres) < 0.05
    assert len(FaceDetector(max_faces=7).detect(wall)) == 7


def test_small_face_in_a_large_image() -> None:
    canvas = Image.new("RGB", (3000, 2000), (90, 110, 90))
    canvas.paste(_face_crop(150), (2400, 1500))  # a face of ~90 px, 3 % of the width
    (face,) = FaceDetector().detect(canvas)
    assert _inside(face, 2475 / 3000, 1570 / 2000)
    assert FaceDetector(tiles=0).detect(canvas) == []


def test_face_cut_by_the_frame(detector: FaceDetector) -> None:
    # Grace Hopper with the left edge of the photo through her eye on the image's left.
    hopper = _hopper()
    cut = hopper.crop((round(hopper.width * 0.35), 0, hopper.width, hopper.height))
    faces = detector.detect(cut)
    assert len(faces) == 1
    assert faces[0].left == 0.0  # the box is clipped to the image


@pytest.mark.parametrize("mode", ["L", "CMYK", "P", "RGBA", "1"])
def test_image_modes(detector: FaceDetector, mode: str) -> None:
    image = _astronaut().convert(mode)
    faces = detector.detect(image)
    if mode == "1":  # a 1-bit dither: no face to speak of, and no error
        assert len(faces) <= 1
    else:
        assert len(faces) == 1
        assert _inside(faces[0], 211 / 512, 106 / 512)


def test_tiny_and_empty_images(detector: FaceDetector) -> None:
    for size in [(1, 1), (3, 200), (200, 3), (16, 16)]:
        assert detector.detect(Image.new("RGB", size, (200, 160, 140))) == []
    with pytest.raises(RecognitionError, match="empty"):
        detector.detect(Image.new("RGB", (0, 10)))


def test_analyzer_reports_faces_with_landmarks_and_a_face_label() -> None:
    analyzer = FaceAnalyzer()
    assert analyzer.name == "faces" and analyzer.version == "3"
    blank, astronaut = analyzer.analyze([Image.new("RGB", (640, 480), (20, 60, 200)), _astronaut()])
    assert blank.faces == [] and blank.labels == []
    (face,) = astronaut.faces
    assert {"left_eye", "right_eye"} <= face["landmarks"].keys()
    (label,) = astronaut.labels
    assert label.label == "Face" and label.parents == ("Person",)
    assert label.instances == ({"bbox": face["bbox"], "confidence": face["confidence"]},)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="min_confidence"):
        FaceDetector(min_confidence=120)
    with pytest.raises(ValueError, match="tiles"):
        FaceDetector(tiles=-1)
    with pytest.raises(ValueError, match="max_faces"):
        FaceDetector(max_faces=0)


def test_a_broken_model_is_a_recognition_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(RecognitionError, match="BlazeFace"):
        FaceDetector(model=broken).detect(_astronaut())
