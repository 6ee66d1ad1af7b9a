"""What every analyzer shares to run a model: CPUs, load-once, and one ONNX session factory."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
from PIL import Image

from imagedex.errors import RecognitionError

T = TypeVar("T")

#: onnxruntime execution providers, in order of preference. A GPU build adds its provider here
#: (e.g. "CUDAExecutionProvider" first); onnxruntime falls back along the list.
EXECUTION_PROVIDERS: tuple[str, ...] = ("CPUExecutionProvider",)


def available_cpus() -> int:
    """CPUs this process may run on (respects affinity masks and container CPU sets)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def session_options(threads: int) -> Any:
    """CPU session options: `threads` intra-op threads, sequential, all graph optimisations,
    quiet, and no busy-waiting between operators (the worker's fetch/decode threads need the
    same cores; measured in bench/bench_pipeline.py)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def onnx_session(
    model: bytes | str | Path,
    threads: int,
    what: str,
    error: type[Exception] = RecognitionError,
) -> Any:
    """An onnxruntime session for `model` (its bytes or a path) with the project's options and
    providers; any failure raises `error` naming `what` ("the open_nsfw model")."""
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    providers = [p for p in EXECUTION_PROVIDERS if p in available] or ["CPUExecutionProvider"]
    source = str(model) if isinstance(model, Path) else model
    try:
        return ort.InferenceSession(
            source, sess_options=session_options(threads), providers=providers
        )
    except Exception as exc:  # onnxruntime raises its own, unexported exception types
        raise error(f"cannot load {what}: {exc}") from exc


class Lazy(Generic[T]):
    """A value made on first use, once, under a lock (models load when first needed, so an
    analyzer that is configured but never runs costs nothing)."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._value: T | None = None
        self._made = False

    def get(self) -> T:
        if not self._made:
            with self._lock:
                if not self._made:
                    self._value = self._factory()
                    self._made = True
        return self._value  # type: ignore[return-value]  # set once _made is true

    def set(self, value: T) -> None:
        """Use `value` from now on (a model shared by two analyzers, or a stand-in in tests)."""
        with self._lock:
            self._value = value
            self._made = True

    @property
    def loaded(self) -> bool:
        return self._made


def opencv(task: str) -> Any:
    """The cv2 module, or a RecognitionError saying what `task` ("face detection") needs."""
    try:
        import cv2
        import cv2.data
    except ImportError as exc:
        raise RecognitionError(
            f"{task} needs OpenCV (pip install 'opencv-python-headless<5')"
        ) from exc
    return cv2


def packaged_model(file: str) -> bytes:
    """The bytes of a model shipped in `imagedex/recognition/models/`."""
    from importlib import resources

    try:
        return resources.files("imagedex.recognition").joinpath("models", file).read_bytes()
    except OSError as exc:
        raise RecognitionError(f"the packaged model {file} is missing: {exc}") from exc


def percent(name: str, value: float) -> float:
    """`value` checked to be a percentage (ValueError naming `name` otherwise)."""
    if not 0.0 <= value <= 100.0:
        raise ValueError(f"{name} must be between 0 and 100")
    return float(value)


def cpu_threads(threads: int | None) -> int:
    """onnxruntime intra-op threads: `threads`, or every CPU this process may use."""
    if threads is not None and threads < 1:
        raise ValueError("threads must be at least 1")
    return threads or available_cpus()


def centre_square(
    image: Image.Image, size: int, crop_fraction: float, mean: np.ndarray, std: np.ndarray
) -> np.ndarray:
    """The centred square covering `crop_fraction` of the shorter side, resized to `size` with
    one antialiased bicubic resize of that source box (large photos are never scaled whole),
    scaled to 0-1 and normalised: float32 `[3, size, size]`."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    width, height = image.size
    if width < 1 or height < 1:
        raise RecognitionError("cannot analyze an empty (0-pixel) image")
    side = min(width, height) * crop_fraction
    left, top = (width - side) / 2, (height - side) / 2
    square = image.resize(
        (size, size),
        Image.Resampling.BICUBIC,
        box=(left, top, left + side, top + side),
        reducing_gap=3.0,
    )
    pixels = np.asarray(square, dtype=np.float32) * np.float32(1.0 / 255.0)
    pixels = (pixels - mean) / std
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))
