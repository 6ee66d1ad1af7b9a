"""Image recognition: analyzers that turn decoded images into document fields.

`ANALYZERS` maps each analyzer's one name (the `recognizers` setting, `analyzed_with`,
`--analyzer`) to its class; classes import only when enabled, so unused models never load.
Installed packages add analyzers through the `imagedex.analyzers` entry point group.
"""

from __future__ import annotations

from imagedex.recognition.base import Recognizer
from imagedex.registry import Registry

ANALYZERS: Registry[type[Recognizer]] = Registry("analyzer", "imagedex.analyzers")
ANALYZERS.register("imagenet", "imagedex.recognition.imagenet:ImageNetLabeller")
ANALYZERS.register("objects", "imagedex.recognition.objects:ObjectDetector")
ANALYZERS.register("moderation", "imagedex.recognition.moderation:ModerationAnalyzer")
ANALYZERS.register("faces", "imagedex.recognition.faces:FaceAnalyzer")
ANALYZERS.register("people", "imagedex.recognition.people:PeopleAnalyzer")
ANALYZERS.register("ocr", "imagedex.recognition.ocr:TextAnalyzer")
ANALYZERS.register("rekognition", "imagedex.recognition.rekognition:RekognitionRecognizer")
