"""SQLite vs OpenSearch side by side, in one run, on the same synthetic documents.

Measures bulk indexing (docs/s) and search latency p50/p99 for the original system's three
queries (label; label with a minimum confidence; free text by title word) through the same
`SearchIndex` protocol the CLI and API use. OpenSearch runs as a real local node started by
deploy/opensearch.sh on the same 2 cores, so its latencies include HTTP and JSON on both ends.

    python bench/bench_backends.py [--docs 100000] [--queries 200] [--quick] [--no-write]
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

import bench_index
from imagedex.documents import SearchQuery
from imagedex.index import SearchIndex, open_index

try:
    import common
except ImportError:  # pragma: no cover - run as `python -m bench.bench_backends`
    from bench import common  # type: ignore[no-redef]

SCRIPT = common.ROOT / "deploy" / "opensearch.sh"
SEED = 11


def build(index: SearchIndex, docs: int) -> float:
    """Bulk index `docs` documents; docs/s (time inside upsert only)."""
    vocab = bench_index.make_vocabulary(SEED)
    spent = 0.0
    done = 0
    for batch in bench_index.generate(vocab, docs, SEED):
        start = time.perf_counter()
        index.upsert(batch)
        spent += time.perf_counter() - start
        done += len(batch)
    return done / spent


def queries(n: int) -> dict[str, list[SearchQuery]]:
    vocab = bench_index.make_vocabulary(SEED)
    rng = np.random.default_rng([SEED, 9])
    labels, words = bench_index.frequent_values(vocab, rng, n)
    return {
        "label": [SearchQuery(labels=(lb,)) for lb in labels],
        "label + min_confidence=90": [
            SearchQuery(labels=(lb,), min_confidence=90) for lb in labels
        ],
        "text (title word)": [SearchQuery(text=w) for w in words],
    }


def latencies(index: SearchIndex, qs: Sequence[SearchQuery]) -> dict[str, float]:
    for q in qs[:20]:  # warm-up
        index.search(q)
    search: Callable[[SearchQuery], object] = index.search
    return common.percentiles(common.timed_each(search, qs))


def start_node(data: Path) -> str:
    proc = subprocess.run(
        [str(SCRIPT), "start", "--port", "auto", "--data", str(data), "--heap", "1g"],
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )
    return proc.stdout.strip().splitlines()[-1]


def main(argv: Sequence[str] | None = None) -> int:
    parser = common.arg_parser(__doc__)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="10k docs, 50 queries, no docs")
    common.add_write_options(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.docs, args.queries = 10_000, 50
    facts = common.machine_facts()
    qs = queries(args.queries)
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="imagedex-bench-") as tmp:
        tmp_path = Path(tmp)
        node_data = tmp_path / "node"
        url = start_node(node_data)
        try:
            backends = {
                "SQLite": open_index("sqlite", tmp_path),
                "OpenSearch": open_index(f"opensearch+{url}/bench", tmp_path),
            }
            backends["OpenSearch"].refresh = "false"  # type: ignore[attr-defined]
            for name, index in backends.items():
                print(f"{name}: indexing {args.docs:,} documents ...", flush=True)
                rate = build(index, args.docs)
                if name == "OpenSearch":
                    index.client.request("POST", "/bench/_refresh")  # type: ignore[attr-defined]
                results[name] = {"docs/s": rate, "count": index.count()}
                for kind, qlist in qs.items():
                    results[name][kind] = latencies(index, qlist)
                    print(f"  {kind}: p50 {results[name][kind]['p50']:.2f} ms", flush=True)  # type: ignore[index]
        finally:
            subprocess.run([str(SCRIPT), "stop", "--data", str(node_data)], capture_output=True)
    sq, os_ = results["SQLite"], results["OpenSearch"]
    rows = [
        [
            "bulk index, docs/s",
            f"{sq['docs/s']:,.0f}",
            f"{os_['docs/s']:,.0f}",
            f"{os_['docs/s'] / sq['docs/s']:.2f}x",
        ]
    ]  # type: ignore[operator]
    for kind in qs:
        a, b = sq[kind], os_[kind]
        rows.append(
            [
                f"{kind}: p50 / p99 ms",
                f"{a['p50']:.2f} / {a['p99']:.2f}",  # type: ignore[index]
                f"{b['p50']:.2f} / {b['p99']:.2f}",
                f"{b['p50'] / a['p50']:.1f}x",
            ]
        )  # type: ignore[index]
    table = common.md_table(
        ["metric", "SQLite", "OpenSearch 2.19 (1 node)", "OpenSearch ÷ SQLite"], rows
    )
    print(table)
    markdown = (
        "## SQLite vs OpenSearch (same documents, same queries, one run)\n\n"
        f"{common.machine_markdown(facts)}\n\n"
        f"{args.docs:,} synthetic documents from `bench/bench_index.py` (seed {SEED}), "
        "bulk-indexed "
        "in batches of 500 through `SearchIndex.upsert` (OpenSearch with refresh off during the "
        f"load, then one refresh); {args.queries} queries of each kind (labels among the 300 most "
        "common, title words among the 1000 most common), limit 20, after 20 warm-up queries, "
        "measured client-side through the `SearchIndex` protocol (HTTP + JSON included for "
        "OpenSearch). The OpenSearch node (512 MB-1 GB heap) shares the 2 cores with the "
        "benchmark.\n\n"
        f"{table}\n\n"
        f"Documents counted after the load: SQLite {sq['count']:,}, OpenSearch {os_['count']:,}.\n"
    )
    if common.should_write(args):
        common.publish("backends", markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
