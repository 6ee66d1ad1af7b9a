"""The four Detect operations: imagedex's own analyzers on one request image, answered in the
shapes of Rekognition's responses (`botocore`'s service model is the reference; the tests check
every answer against it).

DetectLabels runs the labellers the worker indexes with by default (`imagenet`, `objects`), so an
image gets the labels, parents, aliases and boxes it would get in the index; DetectModerationLabels
`moderation`; DetectText `ocr`; DetectFaces `faces`. Each analyzer is built once per app, from the
deployment's settings, whether or not `recognizers` enables it (the worker's analyzers, which may
be `rekognition` itself, are not used, so an imagedex pointed at its own endpoint cannot loop).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from imagedex.api.rekognition.errors import RekognitionError
from imagedex.api.rekognition.images import RequestImage
from imagedex.api.rekognition.params import number, string_list, structure
from imagedex.config import Settings
from imagedex.documents import Label
from imagedex.errors import RecognitionError
from imagedex.recognition.base import Analysis, AnalyzerInput, Recognizer
from imagedex.recognition.evidence import finish
from imagedex.recognition.moderation import ModerationAnalyzer
from imagedex.services import build_recognizer

LABELLERS = ("imagenet", "objects")
#: the faces analyzer's keypoint names (left = the image's left, as Rekognition means it) and
#: Rekognition's; its mouth centre and ears have no Rekognition type and are left out
LANDMARK_NAMES = {"left_eye": "eyeLeft", "right_eye": "eyeRight", "nose": "nose"}
MAX_FACES = 100  # Rekognition's own limit: the 100 largest faces
#: Rekognition's landmark types (botocore's LandmarkType); others a detector names are left out
LANDMARK_TYPES = frozenset(
    {
        "eyeLeft",
        "eyeRight",
        "nose",
        "mouthLeft",
        "mouthRight",
        "leftEyeBrowLeft",
        "leftEyeBrowRight",
        "leftEyeBrowUp",
        "rightEyeBrowLeft",
        "rightEyeBrowRight",
        "rightEyeBrowUp",
        "leftEyeLeft",
        "leftEyeRight",
        "leftEyeUp",
        "leftEyeDown",
        "rightEyeLeft",
        "rightEyeRight",
        "rightEyeUp",
        "rightEyeDown",
        "noseLeft",
        "noseRight",
        "mouthUp",
        "mouthDown",
        "leftPupil",
        "rightPupil",
        "upperJawlineLeft",
        "midJawlineLeft",
        "chinBottom",
        "midJawlineRight",
        "upperJawlineRight",
        "",
    }
)
FEATURES = ("GENERAL_LABELS", "IMAGE_PROPERTIES")


class Analyzers:
    """The analyzers the operations use, each built on first use (models load then)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._built: dict[str, Recognizer] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Recognizer:
        with self._lock:
            if name not in self._built:
                if name == "moderation":  # every score: the request's MinConfidence filters
                    threads = self.settings.recognition_threads or None
                    self._built[name] = ModerationAnalyzer(min_confidence=0.0, threads=threads)
                else:
                    built = build_recognizer(self.settings, name)
                    if built is None:
                        raise RecognitionError(f"no analyzer named {name!r} is installed")
                    self._built[name] = built
            return self._built[name]

    def run(self, name: str, image: RequestImage) -> Analysis:
        recognizer = self.get(name)
        item = AnalyzerInput(image.decoded.image, None, image.original)
        return recognizer.analyze([item])[0]

    def version(self, *names: str) -> str:
        return "+".join(f"{name}-{self.get(name).version}" for name in names)


def _box(bbox: dict[str, Any]) -> dict[str, float]:
    return {
        "Width": float(bbox.get("width", 0.0)),
        "Height": float(bbox.get("height", 0.0)),
        "Left": float(bbox.get("left", 0.0)),
        "Top": float(bbox.get("top", 0.0)),
    }


def _category(label: Label) -> str:
    """The broadest label of the vocabulary above this one (parents run most specific first),
    or the label itself when it is a root: Dog -> Animal, Car -> Vehicle, Person -> Person."""
    return label.parents[-1] if label.parents else label.label


def _names(values: list[str]) -> set[str]:
    return {v.lower() for v in values}


def _label_filters(params: dict[str, Any]) -> Callable[[Label], bool]:
    settings = structure(params, "Settings")
    general = structure(settings, "GeneralLabels", "Settings.") if settings else {}
    if settings and "ImageProperties" in settings:
        raise RekognitionError(
            "InvalidParameterException", "imagedex does not compute image properties"
        )
    where = "Settings.GeneralLabels."
    include = _names(string_list(general, "LabelInclusionFilters", where))
    exclude = _names(string_list(general, "LabelExclusionFilters", where))
    categories_in = _names(string_list(general, "LabelCategoryInclusionFilters", where))
    categories_out = _names(string_list(general, "LabelCategoryExclusionFilters", where))

    def keep(label: Label) -> bool:
        name, category = label.label.lower(), _category(label).lower()
        return (
            (not include or name in include)
            and name not in exclude
            and (not categories_in or category in categories_in)
            and category not in categories_out
        )

    return keep


def detect_labels(
    params: dict[str, Any], image: RequestImage, analyzers: Analyzers
) -> dict[str, Any]:
    max_labels = number(params, "MaxLabels", 0, None, integer=True)
    min_confidence = number(params, "MinConfidence", 0, 100)
    features = string_list(params, "Features")
    unknown = [f for f in features if f not in FEATURES]
    if unknown:
        raise RekognitionError(
            "InvalidParameterException", f"Features takes {', '.join(FEATURES)}, not {unknown}"
        )
    if "IMAGE_PROPERTIES" in features:
        raise RekognitionError(
            "InvalidParameterException",
            "imagedex does not compute IMAGE_PROPERTIES; ask for GENERAL_LABELS only",
        )
    keep = _label_filters(params)
    found: list[Label] = []
    for name in LABELLERS:
        found += analyzers.run(name, image).labels
    floor = 55.0 if min_confidence is None else min_confidence  # Rekognition's default
    labels = sorted((lb for lb in finish(found, floor) if keep(lb)), key=lambda lb: -lb.confidence)
    if max_labels is not None:
        labels = labels[: int(max_labels)]
    return {
        "Labels": [
            {
                "Name": label.label,
                "Confidence": float(label.confidence),
                "Instances": [
                    {"BoundingBox": _box(i.get("bbox", {})), "Confidence": float(i["confidence"])}
                    for i in label.instances
                    if "confidence" in i
                ],
                "Parents": [{"Name": p} for p in label.parents],
                "Aliases": [{"Name": a} for a in label.aliases],
                "Categories": [{"Name": _category(label)}],
            }
            for label in labels
        ],
        "LabelModelVersion": analyzers.version(*LABELLERS),
    }


def detect_moderation_labels(
    params: dict[str, Any], image: RequestImage, analyzers: Analyzers
) -> dict[str, Any]:
    min_confidence = number(params, "MinConfidence", 0, 100)
    for unsupported in ("HumanLoopConfig", "ProjectVersion"):
        if unsupported in params:
            raise RekognitionError(
                "InvalidParameterException", f"imagedex does not support {unsupported}"
            )
    floor = 50.0 if min_confidence is None else min_confidence  # Rekognition's default
    found = analyzers.run("moderation", image).moderation
    return {
        "ModerationLabels": [
            {
                "Confidence": float(m["confidence"]),
                "Name": str(m["label"]),
                "ParentName": str(m.get("parent", "")),
                "TaxonomyLevel": 2 if m.get("parent") else 1,
            }
            for m in sorted(found, key=lambda m: -float(m["confidence"]))
            if float(m["confidence"]) >= floor
        ],
        "ModerationModelVersion": analyzers.version("moderation"),
    }


def detect_faces(
    params: dict[str, Any], image: RequestImage, analyzers: Analyzers
) -> dict[str, Any]:
    attributes = string_list(params, "Attributes")
    wrong = [a for a in attributes if a not in ("DEFAULT", "ALL")]
    if wrong:
        raise RekognitionError(
            "InvalidParameterException", f"Attributes takes DEFAULT or ALL, not {wrong}"
        )
    faces = analyzers.run("faces", image).faces
    largest = sorted(
        faces,
        key=lambda f: -float(f["bbox"].get("width", 0)) * float(f["bbox"].get("height", 0)),
    )[:MAX_FACES]
    ordered = sorted(largest, key=lambda f: -float(f.get("confidence", 0)))
    return {"FaceDetails": [face_detail(face) for face in ordered]}


def face_detail(face: dict[str, Any]) -> dict[str, Any]:
    """A face as the faces analyzer gives it (`DetectedFace.to_dict()`), as a FaceDetail."""
    detail: dict[str, Any] = {
        "BoundingBox": _box(face.get("bbox", {})),
        "Confidence": float(face.get("confidence", 0.0)),
    }
    landmarks = face.get("landmarks")
    if isinstance(landmarks, dict):  # keypoints as fractions: {"left_eye": {"x", "y"}, ...}
        named = ((LANDMARK_NAMES.get(str(k), str(k)), p) for k, p in landmarks.items())
        detail["Landmarks"] = [
            {"Type": kind, "X": float(point["x"]), "Y": float(point["y"])}
            for kind, point in named
            if kind in LANDMARK_TYPES
        ]
    return detail
