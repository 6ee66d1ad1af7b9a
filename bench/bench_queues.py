"""Images/s with 1 and 2 `imagedex worker` processes on each work queue: the embedded SQLite queue,
RabbitMQ (a node from deploy/rabbitmq.sh) and Amazon SQS (moto_server, with S3 and its
notifications, as bench_pipeline.py does).

    python bench/bench_queues.py            # 160 photos, 5 repeats, writes the docs section
    python bench/bench_queues.py --quick    # 24 photos, 1 repeat, docs untouched
    python bench/bench_queues.py --paths sqlite,rabbitmq

Every run starts from an empty data dir with the whole set already queued, then starts the
worker processes (real `python -m imagedex.cli.main worker`, as deployed) and polls the index's
document count. The rate is counted from the first indexed document to the last, so model
loading and process start-up, which do not depend on the queue, are left out:
(images - first count) / (time of the last - time of the first).

The same upload-like photos as bench_pipeline.py (bench/common.py) and the same analyzers in
every run: the ImageNet labeller alone, without the text embedding (`IMAGEDEX_RECOGNIZERS=
imagenet`, `IMAGEDEX_SEMANTIC=false`), batch 8: the lightest set that still labels, so the
queue's own cost is as visible as it can be next to decoding and one model. The store is the
local folder for SQLite and RabbitMQ, S3 (moto) for SQS, as each is deployed. Paths and worker
counts are interleaved within each repeat; medians are reported. Results go to the `queues`
section of docs/benchmarks.md.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:  # run as `python bench/bench_queues.py` (bench/ on sys.path) or as `bench.bench_queues`
    import common
except ImportError:  # pragma: no cover
    from bench import common  # type: ignore[no-redef]

FULL_IMAGES = 160
QUICK_IMAGES = 24
WORKER_COUNTS = (1, 2)
PATHS = ("sqlite", "rabbitmq", "sqs")
TITLES = {
    "sqlite": "SQLite queue (embedded), folder store",
    "rabbitmq": "RabbitMQ (quorum queue), folder store",
    "sqs": "SQS + S3 notifications (moto)",
}
BUCKET = "imagedex-bench-queues"
QUEUE = "imagedex-bench-queues"
RUN_TIMEOUT = 600.0
ANALYZER_ENV = {
    "IMAGEDEX_RECOGNIZERS": "imagenet",
    "IMAGEDEX_SEMANTIC": "false",
    "IMAGEDEX_BATCH_SIZE": "8",
    "IMAGEDEX_POLL_INTERVAL": "0.1",
}


@dataclass
class Run:
    path: str
    workers: int
    images: int
    first_count: int
    span_s: float  # first indexed document -> last
    startup_s: float  # workers started -> first indexed document
    worker_cpu_s: float  # all worker processes, over the span
    server_cpu_s: float  # the queue's server process (RabbitMQ's or moto's), over the span

    @property
    def counted(self) -> int:
        return self.images - self.first_count

    @property
    def images_per_s(self) -> float:
        return self.counted / self.span_s

    @property
    def worker_cpu_ms(self) -> float:
        return self.worker_cpu_s / self.counted * 1000

    @property
    def server_cpu_ms(self) -> float:
        return self.server_cpu_s / self.counted * 1000


@dataclass
class Cell:
    runs: list[Run] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return statistics.median(r.images_per_s for r in self.runs)

    @property
    def worker_cpu_ms(self) -> float:
        return statistics.median(r.worker_cpu_ms for r in self.runs)

    @property
    def server_cpu_ms(self) -> float:
        return statistics.median(r.server_cpu_ms for r in self.runs)


def cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of a process, from /proc (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def base_env(data_dir: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEDEX_")}
    env.update({"IMAGEDEX_DATA_DIR": str(data_dir), **ANALYZER_ENV, **extra})
    return env


def cli(env: dict[str, str], *args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "imagedex.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"imagedex {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")


def documents(data_dir: Path) -> int:
    path = data_dir / "index.sqlite3"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=10) as db:
            return int(db.execute("SELECT COUNT(*) FROM docs").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def timed_workers(
    env: dict[str, str], count: int, images: int, path: str, server_pid: int | None
) -> Run:
    """Start `count` worker processes on an already filled queue; time them until every image
    is indexed; stop them. CPU is read at the first indexed document and at the last."""
    data_dir = Path(env["IMAGEDEX_DATA_DIR"])
    logs = [data_dir / f"worker-{i}.log" for i in range(count)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "imagedex.cli.main", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
        )
        for log in logs
    ]
    pids = [w.pid for w in workers]

    def cpu() -> tuple[float, float]:
        server = cpu_seconds(server_pid) if server_pid else 0.0
        return sum(cpu_seconds(pid) for pid in pids), server

    started = time.perf_counter()
    first: tuple[float, int] | None = None
    cpu_first = cpu_last = (0.0, 0.0)
    try:
        while True:
            done = documents(data_dir)
            now = time.perf_counter()
            if first is None and done:
                first, cpu_first = (now, done), cpu()
            if done >= images:
                cpu_last = cpu()
                break
            if now - started > RUN_TIMEOUT or any(w.poll() is not None for w in workers):
                tails = [log.read_text(errors="replace")[-2000:] for log in logs]
                raise RuntimeError(f"{path}: {done}/{images} indexed; worker logs: {tails}")
            time.sleep(0.02)
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            try:
                w.wait(timeout=60)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()
    assert first is not None
    if first[1] >= images:
        raise RuntimeError(f"{path}: all {images} appeared in one poll; use more images")
    return Run(
        path,
        count,
        images,
        first[1],
        now - first[0],
        first[0] - started,
        cpu_last[0] - cpu_first[0],
        cpu_last[1] - cpu_first[1],
    )


# -- the three queues ------------------------------------------------------------------------


Filler = Callable[[Path], dict[str, str]]  # a fresh data dir -> the env of a filled queue


def folder_filler(folder: Path, extra: Callable[[], dict[str, str]]) -> Filler:
    def fill(data_dir: Path) -> dict[str, str]:
        env = base_env(data_dir, extra())
        cli(env, "ingest", str(folder))  # copies into the store and queues each image
        return env

    return fill


@contextmanager
def rabbitmq_node() -> Iterator[tuple[str, int]]:
    """A node from deploy/rabbitmq.sh: its URL and the pid of its Erlang VM."""
    script = common.ROOT / "deploy" / "rabbitmq.sh"
    with common.scratch_dir("imagedex-bench-rabbitmq-") as data:
        proc = subprocess.run(
            [str(script), "start", "--data", str(data)], capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise RuntimeError(f"deploy/rabbitmq.sh start failed:\n{proc.stderr[-3000:]}")
        try:
            yield proc.stdout.strip().splitlines()[-1], int((data / "node.pid").read_text())
        finally:
            subprocess.run([str(script), "stop", "--data", str(data)], capture_output=True)


class MotoSqs:
    """moto_server on loopback (tests/services.py): a fresh bucket, queue and S3 -> SQS
    notifications for each run, the photos put with boto3."""

    def __init__(self, photos: Sequence[tuple[str, bytes]]) -> None:
        tests_dir = str(common.ROOT / "tests")
        if tests_dir not in sys.path:
            sys.path.insert(0, tests_dir)
        from services import MotoServer  # tests/services.py

        self.photos = photos
        self.server = MotoServer()
        self.aws_env = self.server.aws_env()
        os.environ.update(self.aws_env)  # this process's boto3 clients

    def fill(self, data_dir: Path) -> dict[str, str]:
        from imagedex import aws
        from imagedex.aws.setup import AwsTarget, setup

        self.server.reset()
        aws.client.cache_clear()
        s3, sqs = aws.client("s3"), aws.client("sqs")
        queue_url = setup(AwsTarget(BUCKET, QUEUE), s3, sqs)["queue_url"]
        sqs.purge_queue(QueueUrl=queue_url)  # the s3:TestEvent
        for key, data in self.photos:
            s3.put_object(Bucket=BUCKET, Key=key, Body=data, ContentType="image/jpeg")
        deadline = time.monotonic() + 60
        while self._depth(sqs, queue_url) < len(self.photos):
            if time.monotonic() > deadline:
                raise RuntimeError("the S3 notifications did not all reach the SQS queue")
            time.sleep(0.05)
        extra = {"IMAGEDEX_STORE": f"s3://{BUCKET}", "IMAGEDEX_QUEUE": f"sqs://{QUEUE}"}
        return base_env(data_dir, {**self.aws_env, **extra})

    @staticmethod
    def _depth(sqs: Any, url: str) -> int:
        attrs = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"])

    def close(self) -> None:
        self.server.stop()


# -- report ----------------------------------------------------------------------------------


def markdown(
    cells: dict[tuple[str, int], Cell], images: int, repeats: int, facts: dict[str, Any]
) -> str:
    paths = [p for p in PATHS if (p, 1) in cells]
    sqlite_1 = cells.get(("sqlite", 1))
    rows = []
    for path in paths:
        one, two = cells[(path, 1)], cells[(path, 2)]
        rows.append(
            [
                TITLES[path],
                f"{one.rate:.1f}",
                f"{two.rate:.1f}",
                f"{two.rate / one.rate:.2f}×",
                f"{one.rate / sqlite_1.rate:.2f}×" if sqlite_1 else "-",
                f"{one.worker_cpu_ms:.0f}",
                f"{two.worker_cpu_ms:.0f}",
                f"{one.server_cpu_ms:.1f}" if path != "sqlite" else "-",
                " / ".join(f"{r.images_per_s:.1f}" for r in one.runs),
                " / ".join(f"{r.images_per_s:.1f}" for r in two.runs),
            ]
        )
    table = common.md_table(
        [
            "queue",
            "1 worker, images/s",
            "2 workers, images/s",
            "2 ÷ 1",
            "1 worker ÷ SQLite",
            "worker CPU ms/image (1)",
            "worker CPU ms/image (2)",
            "queue server CPU ms/image (1)",
            "1 worker, each run",
            "2 workers, each run",
        ],
        rows,
    )
    return f"""## Work queues: 1 and 2 worker processes (`bench/bench_queues.py`)

{common.machine_markdown(facts)}
The machine was shared: other engineers' JVMs, builds and benchmarks ran on the same two cores,
so the rates carry their noise (see each run);
paths and worker counts were interleaved in each repeat so that it hit them alike. CPU per
image (all worker processes together; the RabbitMQ node's or moto's own process) is much less
sensitive to that than the rates.

{images} upload-like photos (bench_pipeline.py's set), all queued before the workers start;
real `imagedex worker` processes; analyzers: the ImageNet labeller alone (`recognizers =
imagenet`, `semantic = false`), batch 8. Rate and CPU from the first indexed document to the
last (process start-up and model loading left out), medians of {repeats} runs.

{table}

What the ratios mean here: both worker processes ran on the **same two cores**, so two workers
cannot be twice as fast on this machine. "2 ÷ 1" above 1.0 says that one worker leaves part of
the two cores idle (its stages wait on each other: fetch, decode, model, index write) and a
second process fills them, and that a second consumer on the same queue neither stalls nor
loses work (every run indexed every image); it is not how two machines scale. Two machines each
running one worker add one worker's rate each, as long as the queue and the index keep up. What
a queue costs is its server's CPU per image and the worker CPU per image next to the SQLite
queue's; moto is a Python emulation of S3 and SQS, far heavier per request than the services.
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = common.arg_parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="24 photos, 1 repeat")
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--paths", default=",".join(PATHS), help="comma-separated subset")
    common.add_write_options(parser)
    args = parser.parse_args(argv)
    images = args.images or (QUICK_IMAGES if args.quick else FULL_IMAGES)
    repeats = args.repeats or (1 if args.quick else 5)
    # SIGTERM (run_all interrupted, a CI timeout) unwinds like Ctrl-C: nodes and workers stop
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    paths = [p for p in args.paths.split(",") if p]
    if unknown := set(paths) - set(PATHS):
        parser.error(f"unknown paths: {', '.join(sorted(unknown))}")
    facts = common.machine_facts()  # at the start: the load average before the runs
    photos = common.upload_photos(images)
    cells: dict[tuple[str, int], Cell] = {}
    with ExitStack() as stack:
        folder = stack.enter_context(common.scratch_dir("imagedex-bench-photos-"))
        for key, data in photos:
            (folder / key.replace("/", "_")).write_bytes(data)
        fillers: dict[str, tuple[Filler, int | None]] = {}
        if "sqlite" in paths:
            fillers["sqlite"] = (folder_filler(folder, dict), None)
        if "rabbitmq" in paths:
            url, node_pid = stack.enter_context(rabbitmq_node())
            fillers["rabbitmq"] = (
                folder_filler(
                    folder, lambda: {"IMAGEDEX_QUEUE": f"{url}?queue=bench-{uuid.uuid4().hex[:8]}"}
                ),
                node_pid,
            )
        if "sqs" in paths:
            moto = MotoSqs(photos)
            stack.callback(moto.close)
            fillers["sqs"] = (moto.fill, int(moto.server.process.pid))
        for repeat in range(repeats):
            for path, (fill, server_pid) in fillers.items():
                for count in WORKER_COUNTS:
                    with common.scratch_dir() as data_dir:
                        env = fill(data_dir)
                        run = timed_workers(env, count, images, path, server_pid)
                    cells.setdefault((path, count), Cell()).runs.append(run)
                    common.log(
                        f"repeat {repeat + 1}/{repeats} {path:8s} {count} worker(s): "
                        f"{run.images_per_s:.1f} images/s (start-up {run.startup_s:.1f} s)"
                    )
    text = markdown(cells, images, repeats, facts)
    print(text)
    if common.should_write(args):
        common.publish("queues", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
