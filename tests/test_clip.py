"""User-supplied CLIP model directories, tested on a tiny CLIP-shaped model generated here.

The tiny model's image tower averages the normalised RGB pixels (1x1 conv, global pool, linear
into 4 dimensions); its text tower averages word vectors. The word vectors of "red", "green"
and "blue" point where the image tower puts pure red, green and blue images, so a red image is
closer to the text "red" than to "blue", as with a real CLIP model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from imagedex.errors import ConfigError, ImagedexError, RecognitionError
from imagedex.recognition.base import Analysis, Recognizer
from imagedex.recognition.clip import CLIP_FILES, ClipConfig, ClipImageEmbedder, ClipModel

DIM = 4
SIZE = 32
CONTEXT = 8
VOCAB = ["[PAD]", "[UNK]", "<s>", "</s>", "a", "photo", "of", "red", "green", "blue"]
# Word vectors: colours along the normalised RGB directions, filler words on the 4th axis.
WORD_VECTORS: dict[str, list[float]] = {
    "[UNK]": [0, 0, 0, 0.5],
    "<s>": [0, 0, 0, 0.5],
    "</s>": [0, 0, 0, 0.5],
    "a": [0, 0, 0, 1],
    "photo": [0, 0, 0, 1],
    "of": [0, 0, 0, 1],
    "red": [1, -1, -1, 0],
    "green": [-1, 1, -1, 0],
    "blue": [-1, -1, 1, 0],
}


def _save(model: onnx.ModelProto, path: Path) -> None:
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def image_tower(
    out_dim: int | str = DIM, size: int | str = SIZE, weight_dim: int = DIM, hide_dim: bool = False
) -> onnx.ModelProto:
    """hide_dim: slice the output to ``[:, :S]`` so shape inference cannot know D (needs S >= D)."""
    conv = numpy_helper.from_array(np.eye(3, dtype=np.float32).reshape(3, 3, 1, 1), "conv.w")
    proj = np.zeros((weight_dim, 3), dtype=np.float32)
    proj[:3, :3] = np.eye(3)
    nodes = [
        helper.make_node("Conv", ["pixels", "conv.w"], ["features"], kernel_shape=[1, 1]),
        helper.make_node("GlobalAveragePool", ["features"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node(
            "Gemm", ["flat", "proj.w"], ["projected" if hide_dim else "image_embeds"], transB=1
        ),
    ]
    inits = [conv, numpy_helper.from_array(proj, "proj.w")]
    if hide_dim:
        inits += [
            numpy_helper.from_array(np.array([v], dtype=np.int64), n)
            for n, v in (("zero", 0), ("one", 1))
        ]
        nodes += [
            helper.make_node("Shape", ["pixels"], ["side"], start=2, end=3),
            helper.make_node("Slice", ["projected", "zero", "side", "one"], ["image_embeds"]),
        ]
    graph = helper.make_graph(
        nodes,
        "tiny_clip_image",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("image_embeds", TensorProto.FLOAT, ["N", out_dim])],
        initializer=inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def text_tower(
    *,
    with_mask: bool = True,
    id_type: int = TensorProto.INT64,
    context: int | str = "T",
    out_dim: int | str = DIM,
) -> onnx.ModelProto:
    table = np.zeros((len(VOCAB), DIM), dtype=np.float32)
    for word, vector in WORD_VECTORS.items():
        table[VOCAB.index(word)] = vector
    inits = [numpy_helper.from_array(table, "words")]
    ids = "input_ids"
    nodes = [helper.make_node("Gather", ["words", ids], ["vectors"])]
    inputs = [helper.make_tensor_value_info(ids, id_type, ["N", context])]
    if with_mask:
        inputs.append(helper.make_tensor_value_info("attention_mask", id_type, ["N", context]))
        inits.append(numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"))
        inits.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"))
        nodes += [
            helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["maskf", "axis2"], ["mask3"]),
            helper.make_node("Mul", ["vectors", "mask3"], ["masked"]),
            helper.make_node("ReduceSum", ["masked", "axis1"], ["total"], keepdims=0),
            helper.make_node("ReduceSum", ["mask3", "axis1"], ["count"], keepdims=0),
            helper.make_node("Div", ["total", "count"], ["text_embeds"]),
        ]
    else:  # padding vectors are zero, so the plain mean has the same direction
        nodes.append(
            helper.make_node("ReduceMean", ["vectors"], ["text_embeds"], axes=[1], keepdims=0)
        )
    graph = helper.make_graph(
        nodes,
        "tiny_clip_text",
        inputs,
        [helper.make_tensor_value_info("text_embeds", TensorProto.FLOAT, ["N", out_dim])],
        initializer=inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def write_tokenizer(path: Path) -> None:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 2), ("</s>", 3)]
    )
    tokenizer.save(str(path))


def config(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "tiny",
        "embedding_dim": DIM,
        "image_size": SIZE,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
        "context_length": CONTEXT,
        "pad_id": 0,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def make_clip_dir(
    path: Path,
    *,
    image: onnx.ModelProto | None = None,
    text: onnx.ModelProto | None = None,
    **overrides: Any,
) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    _save(image or image_tower(), path / "image.onnx")
    _save(text or text_tower(), path / "text.onnx")
    write_tokenizer(path / "tokenizer.json")
    (path / "clip.json").write_text(json.dumps(config(**overrides)))
    return path


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip_dir(tmp_path_factory.mktemp("clip") / "tiny")


@pytest.fixture(scope="module")
def model(clip_dir: Path) -> ClipModel:
    return ClipModel(clip_dir, threads=1)


def solid(rgb: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> Image.Image:
    return Image.new("RGB", size, rgb)


RED, GREEN, BLUE = (230, 20, 20), (20, 220, 30), (10, 30, 240)


# ---------------------------------------------------------------- embeddings


def test_image_embeddings_shape_and_norm(model: ClipModel) -> None:
    out = model.embed_images([solid(RED), solid(GREEN), solid(BLUE, (300, 500))])
    assert out.shape == (3, DIM) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert model.embed_images([]).shape == (0, DIM)


def test_text_embeddings_shape_and_norm(model: ClipModel) -> None:
    out = model.embed_texts(["red", "a photo of blue", "", "unknown words here"])
    assert out.shape == (4, DIM) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert model.embed_texts([]).shape == (0, DIM)


def test_colour_image_is_closest_to_its_colour_word(model: ClipModel) -> None:
    images = model.embed_images([solid(RED), solid(GREEN), solid(BLUE)])
    texts = model.embed_texts(["a photo of red", "a photo of green", "a photo of blue"])
    similarity = images @ texts.T
    assert similarity[0, 0] > similarity[0, 2]  # red image: "red" beats "blue"
    assert list(np.argmax(similarity, axis=1)) == [0, 1, 2]
    assert list(np.argmax(similarity, axis=0)) == [0, 1, 2]


def test_tokenizer_pads_and_truncates_to_context_length(model: ClipModel) -> None:
    ids, mask = model.tokenize(["red", " ".join(["blue"] * 50)])
    assert ids.shape == mask.shape == (2, CONTEXT)
    assert list(ids[0][:3]) == [2, VOCAB.index("red"), 3] and set(ids[0][3:]) == {0}
    assert list(mask[0]) == [1, 1, 1] + [0] * (CONTEXT - 3)
    assert ids[1][0] == 2 and ids[1][-1] == 3 and mask[1].all()  # end token kept
    out = model.embed_texts([" ".join(["blue"] * 50), " ".join(["blue"] * 9) + " red"])
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)  # the words after the 6th are cut


def test_batches_larger_than_one_run(model: ClipModel) -> None:
    images = [solid(RED)] * 20 + [solid(BLUE)] * 20
    out = model.embed_images(images)
    assert out.shape == (40, DIM)
    np.testing.assert_allclose(out[:20], np.repeat(out[:1], 20, axis=0), atol=1e-6)
    texts = model.embed_texts(["red"] * 35)
    assert texts.shape == (35, DIM)


def test_awkward_images(model: ClipModel) -> None:
    rgba = Image.new("RGBA", (10, 10), (*RED, 0))
    images = [
        Image.new("L", (20, 20), 128),
        rgba,
        Image.new("CMYK", (16, 16), (0, 200, 200, 0)),
        Image.new("P", (5, 5)),
        solid(RED, (1, 1)),
        solid(RED, (1000, 3)),
    ]
    out = model.embed_images(images)
    assert out.shape == (6, DIM)
    assert np.all(np.isfinite(out))
    with pytest.raises(RecognitionError):
        model.embed_images([Image.new("RGB", (0, 0))])


def test_text_tower_without_mask_and_int32_ids(tmp_path: Path) -> None:
    directory = make_clip_dir(
        tmp_path / "m", text=text_tower(with_mask=False, id_type=TensorProto.INT32)
    )
    clip = ClipModel(directory, threads=1)
    out = clip.embed_texts(["red", "blue"])
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    red_image = clip.embed_images([solid(RED)])[0]
    assert red_image @ out[0] > red_image @ out[1]


def test_static_context_length_matching_config(tmp_path: Path) -> None:
    directory = make_clip_dir(tmp_path / "m", text=text_tower(context=CONTEXT))
    ClipModel(directory).load()


# ---------------------------------------------------------------- the analyzer


def test_image_embedder_is_a_recognizer(clip_dir: Path, model: ClipModel) -> None:
    embedder = ClipImageEmbedder(model)
    assert isinstance(embedder, Recognizer)
    assert embedder.name == "clip-tiny"
    assert len(embedder.version) == 12  # no version in clip.json: a hash of the towers
    assert ClipImageEmbedder(clip_dir).version == embedder.version
    results = embedder.analyze([solid(RED), solid(BLUE)])
    assert len(results) == 2 and all(isinstance(r, Analysis) for r in results)
    vectors = [r.embedding for r in results]
    assert all(v is not None and len(v) == DIM for v in vectors)
    assert all(isinstance(x, float) for v in vectors if v is not None for x in v)
    assert embedder.analyze([]) == []


def test_version_from_config(tmp_path: Path) -> None:
    directory = make_clip_dir(tmp_path / "m", version="2024-05", name="ViT-B-32.openai")
    embedder = ClipImageEmbedder(directory)
    assert (embedder.name, embedder.version) == ("clip-ViT-B-32.openai", "2024-05")


# ---------------------------------------------------------------- broken directories


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        ClipModel(tmp_path / "nope")


@pytest.mark.parametrize("missing", CLIP_FILES)
def test_missing_file(tmp_path: Path, missing: str) -> None:
    directory = make_clip_dir(tmp_path / "m")
    (directory / missing).unlink()
    with pytest.raises(ConfigError, match=f"lacks {missing}"):
        ClipModel(directory)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"name": None}, "name"),
        ({"name": "has spaces"}, "name"),
        ({"embedding_dim": 0}, "embedding_dim"),
        ({"embedding_dim": "4"}, "embedding_dim"),
        ({"image_size": None}, "image_size"),
        ({"mean": [0.5, 0.5]}, "mean"),
        ({"std": [0.5, 0.0, 0.5]}, "std"),
        ({"context_length": True}, "context_length"),
        ({"pad_id": -1}, "pad_id"),
        ({"version": ""}, "version"),
    ],
)
def test_invalid_config(tmp_path: Path, overrides: dict[str, Any], match: str) -> None:
    directory = make_clip_dir(tmp_path / "m", **overrides)
    with pytest.raises(ConfigError, match=match):
        ClipModel(directory)


def test_config_not_json(tmp_path: Path) -> None:
    directory = make_clip_dir(tmp_path / "m")
    (directory / "clip.json").write_text("{not json")
    with pytest.raises(ConfigError, match="JSON"):
        ClipModel(directory)
    (directory / "clip.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="object"):
        ClipModel(directory)


def test_config_from_dict_roundtrip() -> None:
    cfg = ClipConfig.from_dict(config())
    assert cfg.embedding_dim == DIM and cfg.mean == (0.5, 0.5, 0.5) and cfg.version is None


def test_corrupt_onnx_files(tmp_path: Path) -> None:
    directory = make_clip_dir(tmp_path / "m")
    (directory / "image.onnx").write_bytes(b"not a model")
    clip = ClipModel(directory)
    with pytest.raises(ConfigError, match=r"image\.onnx"):
        clip.embed_images([solid(RED)])
    clip.embed_texts(["red"])  # the text tower is independent
    (directory / "text.onnx").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"text\.onnx"):
        ClipModel(directory).embed_texts(["red"])


def test_corrupt_tokenizer(tmp_path: Path) -> None:
    directory = make_clip_dir(tmp_path / "m")
    (directory / "tokenizer.json").write_text('{"model": 3}')
    with pytest.raises(ConfigError, match=r"tokenizer\.json"):
        ClipModel(directory).embed_texts(["red"])


def test_embedding_dim_mismatch_detected_at_load(tmp_path: Path) -> None:
    directory = make_clip_dir(tmp_path / "m", embedding_dim=8)
    clip = ClipModel(directory)
    with pytest.raises(ConfigError, match="embedding_dim=8"):
        clip.embed_images([solid(RED)])
    with pytest.raises(ConfigError, match="embedding_dim=8"):
        clip.embed_texts(["red"])


def test_embedding_dim_mismatch_detected_at_run_time(tmp_path: Path) -> None:
    # Symbolic output dimension: only running the model reveals it gives 5, not 4.
    directory = make_clip_dir(
        tmp_path / "m", image=image_tower(out_dim="D", size="S", weight_dim=5, hide_dim=True)
    )
    with pytest.raises(RecognitionError, match=r"\(1, 4\)"):
        ClipModel(directory).embed_images([solid(RED)])


def test_image_size_mismatch(tmp_path: Path) -> None:
    directory = make_clip_dir(tmp_path / "m", image=image_tower(size=16))
    with pytest.raises(ConfigError, match="32"):
        ClipModel(directory).load()


def test_context_length_mismatch(tmp_path: Path) -> None:
    directory = make_clip_dir(tmp_path / "m", text=text_tower(context=16))
    with pytest.raises(ConfigError, match="context_length=8"):
        ClipModel(directory).load()


def test_wrong_input_types(tmp_path: Path) -> None:
    swapped = make_clip_dir(tmp_path / "swapped", image=text_tower(), text=image_tower())
    with pytest.raises(ConfigError, match=r"image\.onnx"):
        ClipModel(swapped).embed_images([solid(RED)])
    with pytest.raises(ConfigError, match=r"text\.onnx"):
        ClipModel(swapped).embed_texts(["red"])


def test_errors_are_imagedex_errors(tmp_path: Path) -> None:
    with pytest.raises(ImagedexError):
        ClipModel(tmp_path)
    with pytest.raises(ValueError):
        ClipModel(tmp_path, threads=0)


def test_clip_model_drives_semantic_search_end_to_end(clip_dir: Path, tmp_path: Path) -> None:
    """A user-supplied CLIP directory: images embedded by its image tower at ingest, queries by
    its text tower, through the real CLI."""
    from cli_helpers import cli_json, imagedex_env

    folder = tmp_path / "colours"
    folder.mkdir()
    for name, rgb in (("red.png", (220, 20, 20)), ("blue.png", (20, 20, 220))):
        solid(rgb, (64, 48)).save(folder / name)
    env = imagedex_env(tmp_path / "data", IMAGEDEX_CLIP_MODEL_DIR=str(clip_dir))
    assert cli_json(env, "ingest", str(folder), "--wait")["indexed"] == 2
    shown = cli_json(env, "show", "red.png")
    assert len(shown["embedding"]) == 4 and any(
        k.startswith("clip-") for k in shown["analyzed_with"]
    )
    for word, first in (("a photo of red", "red.png"), ("blue", "blue.png")):
        hits = cli_json(env, "search", word, "--semantic")["hits"]
        assert hits[0]["title"] == first
