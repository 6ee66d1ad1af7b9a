"""Web API latency at 100k documents on the embedded SQLite index, through a real server.

    python bench/bench_web.py                    # 100k documents, 200 requests per kind
    python bench/bench_web.py --quick            # 10k documents, 30 requests, docs untouched
    python bench/bench_web.py --docs 100000 --requests 500

The index is bench_index.py's cached synthetic collection (built on first use), copied to a
temporary data dir so the server never touches the cache. A real uvicorn (one process, the app of
`imagedex up` without the worker) serves it on 127.0.0.1; one httpx client with keep-alive sends
the requests one after another, so each time is one request's full server time plus a loopback
round trip (well under a millisecond here). Measured: /api/search by label, label with a minimum
confidence, title text, label with facets; /api/dashboard unfiltered and filtered; the app page;
and search-as-you-type: the prefixes a user types (`d`, `do`, `dog`) of frequent title words.
Results go to the `web` section of docs/benchmarks.md.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

import bench_index

try:
    import common
except ImportError:  # pragma: no cover - run as `python -m bench.bench_web`
    from bench import common  # type: ignore[no-redef]

SEED = 7  # bench_index.py's default: its cached 100k index is reused
WARMUP = 5

Request = tuple[str, dict[str, Any]]


def serve(data_dir: Path, index_path: Path, port: int) -> None:
    """The server process: the API over the copied index, nothing else running."""
    import uvicorn

    from imagedex.api import create_app
    from imagedex.config import load_settings
    from imagedex.services import Services

    settings = load_settings(
        environ={}, data_dir=data_dir, index=f"sqlite://{index_path}", scheduler=False
    )
    services = Services.from_settings(settings)
    app = create_app(services)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def start_server(data_dir: Path, index_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, __file__, "--serve", str(data_dir), str(index_path), str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=5).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not answer within 120 s")


def request_sets(n: int) -> dict[str, list[Request]]:
    vocab = bench_index.make_vocabulary(SEED)
    rng = np.random.default_rng([SEED, 21])
    labels, words = bench_index.frequent_values(vocab, rng, n)
    typed = [w for w in vocab.title_words[:200] if len(w) >= 4]
    prefix_words = [typed[int(i)] for i in rng.integers(0, len(typed), size=n)]
    search = "/api/search"
    sets: dict[str, list[Request]] = {
        "search: label": [(search, {"label": lb}) for lb in labels],
        "search: label + min_confidence=90": [
            (search, {"label": lb, "min_confidence": 90}) for lb in labels
        ],
        "search: text (title word)": [(search, {"q": w}) for w in words],
        "search: label + facets=true": [(search, {"label": lb, "facets": "true"}) for lb in labels],
    }
    for length in (1, 2, 3):
        sets[f"as-you-type: {length} character(s)"] = [
            (search, {"q": w[:length]}) for w in prefix_words
        ]
    sets["as-you-type: whole word"] = [(search, {"q": w}) for w in prefix_words]
    sets["dashboard: no filter"] = [("/api/dashboard", {})] * n
    sets["dashboard: label filter"] = [("/api/dashboard", {"label": lb}) for lb in labels]
    sets["app page (GET /)"] = [("/", {})] * n
    return sets


def measure(
    client: httpx.Client, requests: Sequence[Request], check: Callable[[httpx.Response], None]
) -> list[float]:
    for path, params in requests[:WARMUP]:
        check(client.get(path, params=params))
    samples = []
    for path, params in requests:
        start = time.perf_counter()
        response = client.get(path, params=params)
        samples.append(time.perf_counter() - start)
        check(response)
    return samples


def _ok(name: str) -> Callable[[httpx.Response], None]:
    def check(response: httpx.Response) -> None:
        if response.status_code != 200:
            raise RuntimeError(f"{name}: HTTP {response.status_code}: {response.text[:300]}")
        if "facets" in name and "facets" not in response.json():
            raise RuntimeError(f"{name}: the answer has no facets (is facets=true supported?)")

    return check


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--serve"]:
        serve(Path(argv[1]), Path(argv[2]), int(argv[3]))
        return 0
    parser = common.arg_parser(__doc__)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per kind")
    parser.add_argument("--quick", action="store_true", help="10k docs, 30 requests, no docs")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached index")
    parser.add_argument(
        "--skip", action="append", default=[], metavar="TEXT", help="leave out kinds naming TEXT"
    )
    common.add_write_options(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.docs, args.requests = 10_000, 30

    facts = common.machine_facts()
    vocab = bench_index.make_vocabulary(SEED)
    bench_index.build(vocab, args.docs, SEED, args.rebuild)
    cached = bench_index.cache_path(args.docs, SEED)
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        index_path = Path(tmp) / "index.sqlite3"
        shutil.copyfile(cached, index_path)
        process, url = start_server(data_dir, index_path)
        try:
            with httpx.Client(base_url=url, timeout=60) as client:
                total = client.get("/healthz").json()["documents"]
                if total != args.docs:
                    raise SystemExit(f"the server sees {total} documents, expected {args.docs}")
                for name, requests in request_sets(args.requests).items():
                    if any(text in name for text in args.skip):
                        continue
                    common.log(f"{name} ...")
                    stats = common.percentiles(measure(client, requests, _ok(name)))
                    rows.append(
                        [
                            name,
                            common.fmt_ms(stats["p50"]),
                            common.fmt_ms(stats["p90"]),
                            common.fmt_ms(stats["p99"]),
                            common.fmt_ms(stats["max"]),
                        ]
                    )
                    common.log(
                        f"  p50 {stats['p50']:.2f} ms  p99 {stats['p99']:.2f} ms  "
                        f"max {stats['max']:.2f} ms"
                    )
        finally:
            process.terminate()
            process.wait(timeout=30)

    load_end = common.load_average()
    table = common.md_table(["request", "p50 ms", "p90 ms", "p99 ms", "max ms"], rows)
    print(table)
    if not common.should_write(args):
        return 0
    markdown = f"""## Web API (`bench/bench_web.py`)

{common.machine_markdown(facts)}

{args.docs:,} synthetic documents (bench_index.py's generator, seed {SEED}) in the embedded SQLite
index, served by a real uvicorn on 127.0.0.1 (one process, no worker); one httpx keep-alive
client sends {args.requests} timed requests per kind one after another ({WARMUP} untimed first).
Each time is the request's full server time plus one loopback round trip. Labels are drawn from
the 300 most frequent, words from the 1000 most frequent title words; as-you-type requests are
the first 1, 2 and 3 characters of frequent title words (`d`, `do`, `dog`), each a prefix query.
The dashboard answer holds every panel (over time, top labels, confidence, moderation, ingest).
1-min load average at the end: {load_end:.2f}; on a shared machine the tails (p99, max) suffer
from other work more than the medians do.

{table}

One- and two-character prefixes match a large part of the collection (an FTS5 prefix expands to
every indexed term that starts with it, and the hits are ranked), which is why they cost far more
than a word: search-as-you-type should wait for a pause in typing or a third character.
"""
    common.publish("web", markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
