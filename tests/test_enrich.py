from PIL import Image, ImageFilter

from conftest import real_photos
from imagedex.documents import ImageDocument, Label
from imagedex.enrich.description import describe
from imagedex.enrich.phash import NEAR_DUPLICATE_DISTANCE, bands, dhash, distance


def doc(**kw: object) -> ImageDocument:
    return ImageDocument(id="i", bucket="b", key="k", title="t", s3_location="s3://b/k", **kw)  # type: ignore[arg-type]


def test_description_reads_like_alt_text() -> None:
    d = doc(
        labels=[Label("golden retriever", 88.0, ("retriever", "dog")), Label("tennis ball", 30.0)],
        text=["OPEN 24 HOURS"],
        faces=[{"bbox": {}, "confidence": 90.0}],
    )
    assert describe(d) == (
        "A golden retriever (dog), maybe a tennis ball; 1 face; text: OPEN 24 HOURS"
    )
    assert describe(doc()) == "An image"
    located = {"bbox": {"left": 0, "top": 0, "width": 1, "height": 1}, "confidence": 85.0}
    people = doc(labels=[Label("Clothing", 86.0), Label("Person", 85.0, instances=(located,))])
    assert describe(people) == "A Person, maybe Clothing; 1 person"
    assert describe(doc(labels=[Label("espresso", 5.0)])) == "Possibly an espresso"
    unsafe = doc(
        labels=[Label("beach", 60.0)], moderation=[{"label": "Explicit", "confidence": 97.0}]
    )
    assert describe(unsafe).endswith("flagged as possibly unsafe")
    long_text = doc(text=["x" * 200])
    assert len(describe(long_text)) < 120


def test_perceptual_hash_finds_recompressed_copies_not_other_photos() -> None:
    photos = {k: Image.fromarray(v) for k, v in real_photos().items()}
    cat = photos["chelsea.jpg"]
    copy = cat.resize((cat.width // 2, cat.height // 2)).filter(ImageFilter.GaussianBlur(1))
    assert distance(dhash(cat), dhash(copy)) <= NEAR_DUPLICATE_DISTANCE
    others = [dhash(img) for name, img in photos.items() if name != "chelsea.jpg"]
    assert all(distance(dhash(cat), h) > NEAR_DUPLICATE_DISTANCE for h in others)
    assert len(dhash(cat)) == 16 and len(bands(dhash(cat))) == 4
