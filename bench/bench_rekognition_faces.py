"""Similarity on the Rekognition endpoint's face collections: where do the same person and
different people fall, after the endpoint's own path (JPEG bytes decoded as the endpoint decodes
them, BlazeFace at the detector floor, the largest face, dlib's descriptor, the similarity
mapping of `imagedex.api.rekognition.face_match`)?

Faces: face_recognition 1.3.0's test photos Obama x3 and Biden (fetched once by
`bench/labelled_photos.py`), each also altered as in `bench_face_pairs.py` (mirrored, head crop,
darker, brighter, a third of the size, turned 20 degrees, JPEG quality 20). Every pair of two faces
is "same" when both show one person.

    python bench/bench_rekognition_faces.py     # prints the table for docs/rekognition.md
"""

from __future__ import annotations

import io
import itertools
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from bench_face_pairs import ALTERATIONS
from imagedex.api.rekognition.face_match import FaceEngine, similarity
from imagedex.api.rekognition.images import FACE_DECODE_SIZE
from imagedex.config import Settings
from imagedex.ingest.imaging import decode_image
from imagedex.recognition.face_embedding import distance
from labelled_photos import photos

PEOPLE = {"obama": "Obama", "obama2": "Obama", "obama3": "Obama", "biden": "Biden"}


def as_request(image: Image.Image) -> Image.Image:
    """The picture the endpoint works on for these bytes."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=92)
    return decode_image(buffer.getvalue(), draft_size=FACE_DECODE_SIZE).image


def main() -> None:
    engine = FaceEngine(Settings(recognition_threads=2))
    faces: list[tuple[str, str, object]] = []  # name, person, descriptor
    lost = []
    for photo_id, image, _ in photos(sources=["face_recognition"]):
        name = photo_id.split("/")[1]
        if name not in PEOPLE:
            continue
        originals = engine.detect(as_request(image))
        box = originals[0].to_dict() if originals else None
        copies = {name: image}
        for what, alter in ALTERATIONS.items():
            copies[f"{name} {what}"] = alter(image, box or {})
        for label, copy in copies.items():
            picture = as_request(copy)
            found = engine.detect(picture)
            if not found:
                lost.append(label)
                continue
            faces.append((label, PEOPLE[name], engine.describe(picture, found[:1])[0]))
    same, different = [], []
    for (_, p1, v1), (_, p2, v2) in itertools.combinations(faces, 2):
        (same if p1 == p2 else different).append(distance(v1, v2))
    print(f"faces: {len(faces)}, lost: {lost or 'none'}")
    print("| pairs | count | distance | Similarity | at threshold 80 |")
    print("|---|---|---|---|---|")
    for kind, values, ok in (
        ("same person", same, lambda s: s >= 80),
        ("different people", different, lambda s: s < 80),
    ):
        sims = [float(similarity(d)) for d in values]
        right = sum(ok(s) for s in sims)
        print(
            f"| {kind} | {len(values)} | {min(values):.2f}-{max(values):.2f} | "
            f"{min(sims):.1f}-{max(sims):.1f} | {right}/{len(values)} right |"
        )
    print()
    steps = [n / 10 for n in range(1, 10)]
    print("| distance | " + " | ".join(f"{d:.1f}" for d in steps) + " |")
    print("|---|" + "---|" * len(steps))
    print("| Similarity | " + " | ".join(f"{float(similarity(d)):.1f}" for d in steps) + " |")


if __name__ == "__main__":
    main()
