"""Eye positions measured with OpenCV's Haar cascades, for testing and benchmarking the face
embedder on real photos before a detector that reports eye keypoints is available.

Faces come from imagedex's own Haar face detector (``recognition/faces.py``); in the upper 60 %
of each face box, OpenCV's ``haarcascade_eye.xml`` (and ``haarcascade_eye_tree_eyeglasses.xml``)
find eyes; the pair used is the largest detection in the box's left half and the largest in its
right half. The eye centres are the centres of those detections, as fractions of the image, in
the embedder's convention: ``left_eye`` is the one on the image's left.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from imagedex.recognition.faces import HaarFaceDetector

_EYE_CASCADES = ("haarcascade_eye.xml", "haarcascade_eye_tree_eyeglasses.xml")
_REGION_WIDTH = 240  # the upper part of a face box is scaled to this width to look for eyes


def eye_faces(image: Image.Image, detector: HaarFaceDetector | None = None) -> list[dict[str, Any]]:
    """Faces with both eyes found: ``{"bbox": ..., "confidence": ..., "landmarks":
    {"left_eye": (x, y), "right_eye": (x, y)}}``, fractions of the image, largest face first."""
    import cv2
    import cv2.data

    detector = detector or HaarFaceDetector(max_side=800, require_eyes=False)
    cascades = [cv2.CascadeClassifier(cv2.data.haarcascades + name) for name in _EYE_CASCADES]
    gray = image.convert("L")
    width, height = gray.size
    found = []
    for face in sorted(detector.detect(image), key=lambda f: -f.width * f.height):
        left, top = face.left * width, face.top * height
        box_w, box_h = face.width * width, face.height * height
        scale = _REGION_WIDTH / box_w
        region_h = max(1, round(0.6 * box_h * scale))
        crop = np.asarray(
            gray.resize(
                (_REGION_WIDTH, region_h),
                Image.Resampling.BILINEAR,
                box=(left, top, left + box_w, top + 0.6 * box_h),
            )
        )
        halves: dict[str, tuple[float, float, float]] = {}  # side -> (size, x, y)
        for cascade in cascades:
            eyes = cascade.detectMultiScale(
                crop, scaleFactor=1.05, minNeighbors=3, minSize=(20, 20)
            )
            for x, y, w, h in np.asarray(eyes).reshape(-1, 4):
                cx, cy = x + w / 2, y + h / 2
                side = "left_eye" if cx < _REGION_WIDTH / 2 else "right_eye"
                if side not in halves or w > halves[side][0]:
                    halves[side] = (float(w), float(cx), float(cy))
        if len(halves) < 2:
            continue
        landmarks = {
            side: ((left + cx / scale) / width, (top + cy / scale) / height)
            for side, (_, cx, cy) in halves.items()
        }
        found.append({**face.to_dict(), "landmarks": landmarks})
    return found
