"""Benchmark of the embedded SQLite search index at 100k and 1M synthetic documents.

    python bench/bench_index.py                      # 100k and 1M (builds are cached)
    python bench/bench_index.py --quick              # 10k smoke run, docs untouched
    python bench/bench_index.py --sizes 100000 --rebuild

The documents are generated deterministically (seeded numpy) with a realistic label
distribution: ~1000 distinct labels with Zipf-like frequencies, 3-5 labels per image with
confidences 1-99, 1-3 parents per label from a small set (so parent terms are very common), a few
aliases, bounding boxes on some labels, titles made of words, OCR text on 10% of the images.

Measured: bulk upsert (batches of 500 through `SqliteIndex.upsert`), re-upsert of existing
documents (the exactly-once overwrite path), worker-sized inserts (8 per transaction) and
one-by-one deletes, the three seed queries (label, label with a minimum confidence, free text)
plus parent-label and `sort=newest` label queries, each for frequent and rare values,
`top_labels(20)` (and with a minimum confidence), and the file size per table.
Generated indexes are cached in bench/.cache/ keyed by size, seed and schema; `--rebuild` redoes
them. Results go to the `index` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import inspect
import json
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

import imagedex.index.sqlite as sqlite_index
from imagedex.documents import ImageDocument, Label, SearchQuery, document_id
from imagedex.enrich.description import describe
from imagedex.index.sqlite import SqliteIndex

try:  # run as `python bench/bench_index.py` (bench/ on sys.path) or as `bench.bench_index`
    import common
except ImportError:  # pragma: no cover
    from bench import common  # type: ignore[no-redef]

GEN_VERSION = 2  # bump when the generator changes: cached indexes are keyed by it
BATCH = 500
WORKER_BATCH = 8  # the worker's default batch_size
N_LABELS = 1000
N_PARENTS = 40
N_TITLE_WORDS = 3000
N_OCR_WORDS = 600
EMBEDDING_DIM = 384  # MiniLM, the default semantic model
ZIPF_S = 1.0
FREQUENT_RANKS = range(0, 30)  # "common" query values: the 30 most frequent labels / words
RARE_LABEL_RANKS = range(300, N_LABELS)
RARE_WORD_RANKS = range(500, N_TITLE_WORDS)
FREQUENT_PARENT_RANKS = range(0, 5)
RARE_PARENT_RANKS = range(20, N_PARENTS)
TARGET_LABEL_CONF_P50_MS = 5.0
TARGET_TOP_LABELS_MS = 50.0
TARGET_SIZE = 1_000_000
TARGET_NEWEST_P99_MS = 50.0
TARGET_TEXT_P99_MS = 100.0
TARGET_FACETS_MS = 50.0  # judged on the median of the broad (frequent) filters
TARGET_KEYSTROKE_MS = 50.0  # judged on the median keystroke

console = Console()


# -- synthetic corpus ---------------------------------------------------------------------------


@dataclass
class Vocabulary:
    labels: list[str]
    parents: list[tuple[str, ...]]  # per label
    aliases: list[tuple[str, ...]]  # per label
    parent_names: list[str]
    label_cdf: np.ndarray
    title_words: list[str]
    title_cdf: np.ndarray
    ocr_words: list[str]


def _zipf_cdf(n: int, s: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** s
    cdf = np.cumsum(weights / weights.sum())
    cdf[-1] = 1.0
    return cdf


def _pseudo_words(rng: np.random.Generator, count: int) -> list[str]:
    """`count` distinct pronounceable words of 2-3 consonant-vowel syllables (+ maybe a coda)."""
    onsets = [*"bdfgklmnprstvz", "br", "st", "tr", "pl", "ch", "sh"]
    vowels = ["a", "e", "i", "o", "u", "ai", "ou"]
    codas = ["", "", "", "n", "r", "s", "l", "x"]
    seen: dict[str, None] = {}
    while len(seen) < count:
        n_syll = int(rng.integers(2, 4))
        word = "".join(
            onsets[int(rng.integers(len(onsets)))] + vowels[int(rng.integers(len(vowels)))]
            for _ in range(n_syll)
        )
        word += codas[int(rng.integers(len(codas)))]
        seen.setdefault(word, None)
    return list(seen)


def make_vocabulary(seed: int) -> Vocabulary:
    rng = np.random.default_rng([seed, 1])
    two_word = 150
    n_alias = 150
    words = _pseudo_words(
        rng, N_LABELS + two_word + N_PARENTS + n_alias + N_TITLE_WORDS + N_OCR_WORDS
    )
    it = iter(words)

    def take(n: int) -> list[str]:
        return [next(it) for _ in range(n)]

    label_words = take(N_LABELS)
    qualifiers = take(two_word)
    labels = [w.capitalize() for w in label_words]
    for i, q in enumerate(qualifiers):  # some two-word labels ("Golden Retriever"), spread out
        j = (i * 7 + 3) % N_LABELS
        labels[j] = f"{q.capitalize()} {label_words[j]}"
    parent_names = [w.capitalize() for w in take(N_PARENTS)]
    parent_cdf = _zipf_cdf(N_PARENTS, 0.8)
    parents: list[tuple[str, ...]] = []
    for _ in range(N_LABELS):
        k = int(rng.integers(1, 4))
        picks = np.searchsorted(parent_cdf, rng.random(8))
        chosen = list(dict.fromkeys(int(p) for p in picks))[:k]
        parents.append(tuple(parent_names[p] for p in chosen))
    alias_words = take(n_alias)
    aliases: list[tuple[str, ...]] = [() for _ in range(N_LABELS)]
    for i, j in enumerate(rng.choice(N_LABELS, size=n_alias, replace=False)):
        aliases[int(j)] = (alias_words[i].capitalize(),)
    title_words = take(N_TITLE_WORDS)
    ocr_words = take(N_OCR_WORDS)
    return Vocabulary(
        labels=labels,
        parents=parents,
        aliases=aliases,
        parent_names=parent_names,
        label_cdf=_zipf_cdf(N_LABELS, ZIPF_S),
        title_words=title_words,
        title_cdf=_zipf_cdf(N_TITLE_WORDS, ZIPF_S),
        ocr_words=ocr_words,
    )


BASE_TIME = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
MODELS = {"labels": "mobilenetv2-imagenet@1.0", "faces": "haar@4.10", "text": "rapidocr@3.0"}


def generate(vocab: Vocabulary, n: int, seed: int) -> Iterator[list[ImageDocument]]:
    """The first `n` documents in batches of BATCH; doc i is the same whatever `n` is.

    Like the pipeline's output with its defaults: a description, a perceptual hash and a 384-d
    embedding per image.
    """
    rng = np.random.default_rng([seed, 2])
    start = 0
    while start < n:
        b = BATCH  # always draw a full batch so the stream does not depend on `n`
        n_labels = rng.integers(3, 6, size=b)
        cand = np.searchsorted(vocab.label_cdf, rng.random((b, 16)))
        conf = np.round(rng.uniform(1.0, 99.0, size=(b, 5)), 2)
        has_inst = rng.random((b, 5)) < 0.25
        boxes = np.round(rng.random((b, 5, 4)) * 0.5, 4)
        n_title = rng.integers(2, 5, size=b)
        title_idx = np.searchsorted(vocab.title_cdf, rng.random((b, 4)))
        title_num = np.where(rng.random(b) < 0.4, rng.integers(1, 10_000, size=b), 0)
        has_text = rng.random(b) < 0.10
        ocr_idx = rng.integers(0, len(vocab.ocr_words), size=(b, 2, 4))
        n_faces = np.where(rng.random(b) < 0.2, rng.integers(1, 4, size=b), 0)
        unsafe = rng.random(b) < 0.02
        unsafe_conf = np.round(rng.uniform(50.0, 99.0, size=b), 2)
        phashes = rng.integers(0, 2**63, size=b, dtype=np.int64) * 2 + rng.integers(0, 2, size=b)
        vectors = rng.standard_normal((b, EMBEDDING_DIM), dtype=np.float32)
        gaps = rng.exponential(30.0, size=b)
        sizes = rng.integers(40_000, 8_000_000, size=b)
        dims = rng.choice(np.array([[4032, 3024], [3024, 4032], [1920, 1080], [800, 600]]), b)
        batch: list[ImageDocument] = []
        for j in range(min(b, n - start)):
            i = start + j
            picked = list(dict.fromkeys(int(c) for c in cand[j]))[: int(n_labels[j])]
            labels = [
                Label(
                    label=vocab.labels[li],
                    confidence=float(conf[j, k]),
                    parents=vocab.parents[li],
                    aliases=vocab.aliases[li],
                    instances=(
                        (
                            {
                                "bbox": [float(x) for x in boxes[j, k]],
                                "confidence": float(conf[j, k]),
                            },
                        )
                        if has_inst[j, k]
                        else ()
                    ),
                )
                for k, li in enumerate(picked)
            ]
            words = [vocab.title_words[int(w)] for w in title_idx[j, : int(n_title[j])]]
            if title_num[j]:
                words.append(str(int(title_num[j])))
            key = f"photos/{i // 10_000:03d}/{i:07d}.jpg"
            ingested = BASE_TIME + dt.timedelta(seconds=float(i * 30 + gaps[j]))
            batch.append(
                ImageDocument(
                    id=document_id("bench", key),
                    bucket="bench",
                    key=key,
                    title=" ".join(words),
                    s3_location=f"s3://bench/{key}",
                    etag=hashlib.md5(key.encode()).hexdigest(),
                    size=int(sizes[j]),
                    content_type="image/jpeg",
                    width=int(dims[j][0]),
                    height=int(dims[j][1]),
                    ingested_at=ingested.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    analyzed_with=MODELS,
                    labels=labels,
                    faces=[
                        {"bbox": [0.1 * f, 0.1, 0.2, 0.3], "confidence": 90.0 + f}
                        for f in range(int(n_faces[j]))
                    ],
                    text=(
                        [" ".join(vocab.ocr_words[int(w)] for w in line) for line in ocr_idx[j]]
                        if has_text[j]
                        else []
                    ),
                    moderation=(
                        [{"label": "Suggestive", "confidence": float(unsafe_conf[j]), "parent": ""}]
                        if unsafe[j]
                        else []
                    ),
                    phash=f"{int(phashes[j]) & (2**64 - 1):016x}",
                    embedding=vectors[j].tolist(),
                )
            )
            batch[-1].description = describe(batch[-1])
        yield batch
        start += b


def frequent_values(
    vocab: Vocabulary, rng: np.random.Generator, n: int
) -> tuple[list[str], list[str]]:
    """`n` labels among the 300 most common and `n` title words among the 1000 most common."""
    labels = [vocab.labels[int(i)].lower() for i in rng.integers(0, 300, size=n)]
    words = [vocab.title_words[int(i)] for i in rng.integers(0, 1000, size=n)]
    return labels, words


def worker_documents(vocab: Vocabulary, seed: int, n: int) -> list[ImageDocument]:
    """`n` documents that are not in the cached index (own keys, another random stream)."""
    out = []
    for batch in generate(vocab, n, seed + 1_000_003):
        for doc in batch:
            key = f"worker/{doc.key}"
            out.append(dataclasses.replace(doc, key=key, id=document_id("bench", key)))
    return out


# -- building (cached) --------------------------------------------------------------------------


def schema_key() -> str:
    schema = getattr(sqlite_index, "_SCHEMA", "")
    return hashlib.sha1(str(schema).encode()).hexdigest()[:8]


def source_hash() -> str:
    return hashlib.sha1(inspect.getsource(sqlite_index).encode()).hexdigest()[:12]


def cache_path(size: int, seed: int) -> Path:
    name = f"index-n{size}-seed{seed}-g{GEN_VERSION}-{schema_key()}.sqlite3"
    return common.CACHE_DIR / name


def _remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", ".json"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _checkpoint(path: Path) -> None:
    """Fold the WAL into the database file, so the file size is the index's size."""
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def build(vocab: Vocabulary, size: int, seed: int, rebuild: bool) -> dict[str, Any]:
    """The cached index for (size, seed), built if missing; returns its build metadata."""
    path = cache_path(size, seed)
    meta_path = Path(f"{path}.json")
    if path.exists() and meta_path.exists() and not rebuild:
        meta: dict[str, Any] = json.loads(meta_path.read_text())
        if meta.get("source_hash") != source_hash():
            console.print(
                f"[yellow]note:[/] {path.name} was built by a different version of "
                "imagedex/index/sqlite.py; pass --rebuild to rebuild it with the current code"
            )
        console.print(f"using cached index {path.name} (built {meta['built_at']})")
        meta["cached"] = True
        return meta
    common.CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".building")
    _remove_db(tmp)
    _remove_db(path)
    built_from = source_hash()  # the code that builds it, should sqlite.py change meanwhile
    index = SqliteIndex(tmp)
    batch_seconds: list[float] = []
    load_at_start = common.machine_facts()["load"]
    with Progress(
        TextColumn(f"building {size:,} docs"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("build", total=size, rate="")
        done = 0
        for batch in generate(vocab, size, seed):
            t0 = time.perf_counter()
            index.upsert(batch)
            batch_seconds.append(time.perf_counter() - t0)
            done += len(batch)
            recent = batch_seconds[-20:]
            rate = BATCH * len(recent) / sum(recent)
            progress.update(task, advance=len(batch), rate=f"{rate:,.0f} docs/s")
            if not console.is_terminal and done % max(BATCH, size // 10 // BATCH * BATCH) == 0:
                # no live bar in a log file: a plain line every 10%
                console.print(f"  {done:,}/{size:,} docs, {rate:,.0f} docs/s")
    index.close()
    _checkpoint(tmp)
    for suffix in ("-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    tmp.rename(path)
    tenth = max(1, len(batch_seconds) // 10)
    meta = {
        "size": size,
        "seed": seed,
        "gen_version": GEN_VERSION,
        "schema": schema_key(),
        "source_hash": built_from,
        "built_at": common.machine_facts()["date"],
        "load_at_start": load_at_start,
        "upsert_seconds": sum(batch_seconds),
        "docs_per_s": size / sum(batch_seconds),
        "first10_docs_per_s": BATCH * tenth / sum(batch_seconds[:tenth]),
        "last10_docs_per_s": BATCH * tenth / sum(batch_seconds[-tenth:]),
    }
    meta_path = Path(f"{path}.json")
    meta_path.write_text(json.dumps(meta, indent=1))
    meta["cached"] = False
    return meta


def file_stats(path: Path) -> dict[str, Any]:
    """Size on disk and, where SQLite has the dbstat table, bytes per table/index."""
    total = sum(
        Path(f"{path}{s}").stat().st_size for s in ("", "-wal") if Path(f"{path}{s}").exists()
    )
    per: dict[str, int] = {}
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
        groups = {
            "docs (JSON bodies)": ("docs",),
            "docs indexes (id, title, ingested_at)": (
                "sqlite_autoindex_docs_1",
                "docs_title",
                "docs_ingested",
            ),
            "label_terms (term, confidence, doc)": ("label_terms",),
            "label_terms_doc index": ("label_terms_doc",),
            "label_terms_leaves index (facets)": ("label_terms_leaves",),
            "embeddings (float32 vectors)": ("embeddings",),
            "phash_bands (+ doc index)": ("phash_bands", "phash_bands_doc"),
            "docs_fts (FTS5)": tuple(n for n, _ in rows if str(n).startswith("docs_fts")),
        }
        for group, names in groups.items():
            per[group] = sum(int(s) for n, s in rows if n in names)
        per["other"] = sum(int(s) for _, s in rows) - sum(per.values())
    except sqlite3.Error:
        pass
    finally:
        con.close()
    return {"bytes": total, "tables": per}


# -- queries ------------------------------------------------------------------------------------


@dataclass
class Series:
    name: str
    make: Callable[[str], SearchQuery]
    frequent: list[str]
    rare: list[str]
    samples: dict[str, list[float]] = field(default_factory=lambda: {"frequent": [], "rare": []})
    round_p50: list[float] = field(default_factory=list)
    totals: dict[str, list[int]] = field(default_factory=lambda: {"frequent": [], "rare": []})
    facets: bool = False  # time `facets(query)` instead of `search(query)`


def _pick(rng: np.random.Generator, names: Sequence[str], ranks: range, n: int) -> list[str]:
    idx = rng.integers(ranks.start, ranks.stop, size=n)
    return [names[int(i)] for i in idx]


def query_series(vocab: Vocabulary, seed: int, per_kind: int) -> list[Series]:
    rng = np.random.default_rng([seed, 3])
    half = per_kind // 2
    label_names = [lb.lower() for lb in vocab.labels]
    freq_labels = _pick(rng, label_names, FREQUENT_RANKS, half)
    rare_labels = _pick(rng, label_names, RARE_LABEL_RANKS, half)
    freq_words = _pick(rng, vocab.title_words, FREQUENT_RANKS, half)
    rare_words = _pick(rng, vocab.title_words, RARE_WORD_RANKS, half)
    parent_names = [p.lower() for p in vocab.parent_names]
    freq_parents = _pick(rng, parent_names, FREQUENT_PARENT_RANKS, half)
    rare_parents = _pick(rng, parent_names, RARE_PARENT_RANKS, half)
    return [
        Series("label", lambda v: SearchQuery(labels=(v,), limit=20), freq_labels, rare_labels),
        Series(
            "label + min_confidence=90",
            lambda v: SearchQuery(labels=(v,), min_confidence=90, limit=20),
            freq_labels,
            rare_labels,
        ),
        Series(
            "text (title word)", lambda v: SearchQuery(text=v, limit=20), freq_words, rare_words
        ),
        Series(
            "parent label (hierarchy)",
            lambda v: SearchQuery(labels=(v,), limit=20),
            freq_parents,
            rare_parents,
        ),
    ]


def sort_series(vocab: Vocabulary, seed: int, per_kind: int) -> Series:
    """Label queries sorted by date instead of relevance (fewer: broad ones are slow today)."""
    rng = np.random.default_rng([seed, 5])
    half = max(1, per_kind // 2)
    label_names = [lb.lower() for lb in vocab.labels]
    return Series(
        f"label, sort=newest ({2 * half} queries)",
        lambda v: SearchQuery(labels=(v,), limit=20, sort="newest"),
        _pick(rng, label_names, FREQUENT_RANKS, half),
        _pick(rng, label_names, RARE_LABEL_RANKS, half),
    )


#: facet rows counted by the SQL plan (the column cache off), for comparison
SQL_FACETS = "SQL plan"


def facet_series(
    vocab: Vocabulary, seed: int, per_kind: int, plan: str = "column cache"
) -> list[Series]:
    """Facets (labels, over time, confidence, moderation: what the search page and the dashboard
    show) over the images a label or a title word matches; the frequent ones are the broad
    filtered queries. `plan` names who counts (the same queries either way)."""
    rng = np.random.default_rng([seed, 6])
    half = max(1, per_kind // 2)
    label_names = [lb.lower() for lb in vocab.labels]
    return [
        Series(
            f"facets ({plan}), label filter ({2 * half} queries)",
            lambda v: SearchQuery(labels=(v,)),
            _pick(rng, label_names, FREQUENT_RANKS, half),
            _pick(rng, label_names, RARE_LABEL_RANKS, half),
            facets=True,
        ),
        Series(
            f"facets ({plan}), title word filter ({2 * half} queries)",
            lambda v: SearchQuery(text=v),
            _pick(rng, vocab.title_words, FREQUENT_RANKS, half),
            _pick(rng, vocab.title_words, RARE_WORD_RANKS, half),
            facets=True,
        ),
    ]


def run_queries(
    index: SqliteIndex, series: list[Series], rounds: int, warmup: int, seed: int
) -> None:
    rng = np.random.default_rng([seed, 4])
    for s in series:
        for v in (s.frequent[: warmup // 2] + s.rare[: warmup // 2]) or s.frequent[:1]:
            index.facets(s.make(v)) if s.facets else index.search(s.make(v))
    for _ in range(rounds):
        for s in series:
            mixed = [("frequent", v) for v in s.frequent] + [("rare", v) for v in s.rare]
            order = rng.permutation(len(mixed))
            this_round: list[float] = []
            for i in order:
                kind, value = mixed[int(i)]
                query = s.make(value)
                t0 = time.perf_counter()
                result = index.facets(query) if s.facets else index.search(query)
                elapsed = time.perf_counter() - t0
                s.samples[kind].append(elapsed)
                this_round.append(elapsed)
                s.totals[kind].append(result.total)
            s.round_p50.append(common.percentiles(this_round)["p50"])


@dataclass
class SizeResult:
    size: int
    opened_s: float  # opening the cached index, migrations included
    keystrokes: dict[str, list[float]]  # seconds per request, by prefix length ("1", .. "4+")
    build: dict[str, Any]
    reupsert_docs_per_s: float
    worker_docs_per_s: float
    delete_docs_per_s: float
    series: list[Series]
    top_labels: dict[str, float]
    top_labels_round_p50: list[float]
    top_labels_conf: dict[str, float] | None
    files: dict[str, Any]
    top_share: float
    #: the facet column cache: build_s, mb (its arrays), and the change log's write cost
    columns: dict[str, float] = field(default_factory=dict)


def facet_columns(index: SqliteIndex) -> dict[str, float]:
    """Build the index's facet column cache now (a server builds it in the background on the
    first broad facets; SQLite answers meanwhile): seconds and MB."""
    t0 = time.perf_counter()
    index.facet_columns.build()
    built = time.perf_counter() - t0
    base = index.facet_columns._base
    if base is None:
        raise SystemExit(f"the facet column cache refused: {index.facet_columns.refused}")
    return {"build_s": built, "mb": base.nbytes() / 2**20}


def text_postings(index: SqliteIndex) -> dict[str, float]:
    """Build the index's text postings now (a server builds them in the background from the
    first text query; FTS5 answers meanwhile): seconds and MB."""
    t0 = time.perf_counter()
    index.text_postings.build()
    built = time.perf_counter() - t0
    postings = index.text_postings._index
    if postings is None:
        raise SystemExit(f"the text postings refused: {index.text_postings.refused}")
    return {"text_build_s": built, "text_mb": postings.nbytes() / 2**20}


def change_log_cost(
    vocab: Vocabulary, seed: int, n: int = 4000, rounds: int = 3
) -> dict[str, float]:
    """Bulk upsert (batches of BATCH) into a fresh index with and without the change log the
    facet column cache reads (its INSERT per image and the trim per batch); median docs/s."""
    import tempfile

    from imagedex.index import sqlite_columns

    docs = [d for batch in generate(vocab, n, seed) for d in batch]
    logged, unlogged = sqlite_columns.LOG_SQL, sqlite_columns.TRIM_SQL
    rates: dict[str, list[float]] = {"with": [], "without": []}
    try:
        for _ in range(rounds):
            for mode in ("without", "with"):
                on = mode == "with"
                sqlite_columns.LOG_SQL = logged if on else "SELECT ?"
                sqlite_columns.TRIM_SQL = unlogged if on else "SELECT 1"
                with tempfile.TemporaryDirectory() as tmp:
                    index = SqliteIndex(Path(tmp) / "index.sqlite3", facet_cache_mb=0)
                    t0 = time.perf_counter()
                    for i in range(0, len(docs), BATCH):
                        index.upsert(docs[i : i + BATCH])
                    rates[mode].append(len(docs) / (time.perf_counter() - t0))
                    index.close()
    finally:
        sqlite_columns.LOG_SQL, sqlite_columns.TRIM_SQL = logged, unlogged
    return {
        "log_with": statistics.median(rates["with"]),
        "log_without": statistics.median(rates["without"]),
    }


def measure(
    vocab: Vocabulary,
    size: int,
    seed: int,
    rebuild: bool,
    per_kind: int,
    rounds: int,
    reupsert: int,
    sort_queries: int,
    worker_docs: int,
    facet_queries: int,
    keystroke_words: int,
) -> SizeResult:
    meta = build(vocab, size, seed, rebuild)
    path = cache_path(size, seed)
    t0 = time.perf_counter()
    index = SqliteIndex(path)  # an index built by an earlier version is migrated here
    opened_s = time.perf_counter() - t0
    files = file_stats(path)
    count = index.count()
    if count != size:
        raise SystemExit(f"{path} holds {count} documents, expected {size}: use --rebuild")
    series = query_series(vocab, seed, per_kind)
    console.print(f"[{size:,}] building the text postings")
    postings = text_postings(index)
    console.print(
        f"[{size:,}] searching: {len(series)} kinds x {per_kind} queries x {rounds} rounds"
    )
    run_queries(index, series, rounds, warmup=min(50, per_kind), seed=seed)
    by_date = sort_series(vocab, seed, sort_queries)
    console.print(f"[{size:,}] searching: {by_date.name}")
    run_queries(index, [by_date], rounds=1, warmup=2, seed=seed)
    series.append(by_date)
    console.print(f"[{size:,}] building the facet column cache")
    columns = facet_columns(index) | postings
    by_facets = facet_series(vocab, seed, facet_queries)
    console.print(f"[{size:,}] facets: {', '.join(s.name for s in by_facets)}")
    run_queries(index, by_facets, rounds=1, warmup=2, seed=seed)
    series += by_facets
    sql_only = SqliteIndex(path, facet_cache_mb=0)
    by_sql = facet_series(vocab, seed, facet_queries, SQL_FACETS)  # the same queries
    console.print(f"[{size:,}] facets: {', '.join(s.name for s in by_sql)}")
    run_queries(sql_only, by_sql, rounds=1, warmup=2, seed=seed)
    sql_only.close()
    series += by_sql
    console.print(f"[{size:,}] change log write cost")
    columns.update(change_log_cost(vocab, seed))

    console.print(f"[{size:,}] top_labels(20)")
    top_samples: list[float] = []
    top_round: list[float] = []
    for _ in range(rounds):
        samples = common.timed(lambda: index.top_labels(20), repeat=per_kind, warmup=20)
        top_samples += samples
        top_round.append(common.percentiles(samples)["p50"])
    top = index.top_labels(1)
    top_share = top[0].count / size if top else 0.0
    conf_stats = None
    conf_repeat = 5 if size >= 500_000 else 10
    console.print(f"[{size:,}] top_labels(20, min_confidence=90) x {conf_repeat}")
    conf_stats = common.percentiles(
        common.timed(lambda: index.top_labels(20, min_confidence=90), conf_repeat, warmup=1)
    )

    # the exactly-once overwrite path: re-upsert the first `reupsert` documents unchanged
    console.print(f"[{size:,}] re-upserting {reupsert:,} existing documents")
    docs = [d for batch in generate(vocab, reupsert, seed) for d in batch]
    t0 = time.perf_counter()
    for i in range(0, len(docs), BATCH):
        index.upsert(docs[i : i + BATCH])
    reupsert_rate = len(docs) / (time.perf_counter() - t0)
    if index.count() != size:
        raise SystemExit("re-upsert changed the document count: the overwrite path is broken")

    # the worker's write path: new documents in batches of WORKER_BATCH, then delete them again
    # one by one (which also restores the cached index to its `size` documents)
    console.print(f"[{size:,}] inserting {worker_docs:,} new documents {WORKER_BATCH} at a time")
    fresh = worker_documents(vocab, seed, worker_docs)
    for doc in fresh:  # leftovers of an interrupted earlier run
        index.delete(doc.id)
    t0 = time.perf_counter()
    for i in range(0, len(fresh), WORKER_BATCH):
        index.upsert(fresh[i : i + WORKER_BATCH])
    worker_rate = len(fresh) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for doc in fresh:
        index.delete(doc.id)
    delete_rate = len(fresh) / (time.perf_counter() - t0)
    if index.count() != size:
        raise SystemExit("insert + delete changed the document count")
    index.close()
    _checkpoint(path)
    # the server builds both in the background from its first request: wait twice as long
    settle = 2 * (columns["build_s"] + columns["text_build_s"]) + 2
    typed = keystrokes(path, vocab, seed, keystroke_words, settle) if keystroke_words else {}
    return SizeResult(
        size=size,
        opened_s=opened_s,
        keystrokes=typed,
        build=meta,
        reupsert_docs_per_s=reupsert_rate,
        worker_docs_per_s=worker_rate,
        delete_docs_per_s=delete_rate,
        series=series,
        top_labels=common.percentiles(top_samples),
        top_labels_round_p50=top_round,
        top_labels_conf=conf_stats,
        files=files,
        top_share=top_share,
        columns=columns,
    )


def keystroke_words_for(vocab: Vocabulary, seed: int, n: int) -> list[str]:
    """`n` frequent title words of 4 letters or more, as a user would type them."""
    rng = np.random.default_rng([seed, 7])
    typed = [w for w in vocab.title_words[:200] if len(w) >= 4]
    return [typed[int(i)] for i in rng.integers(0, len(typed), size=n)]


def keystroke_request(prefix: str) -> dict[str, str]:
    """What the search page sends after a keystroke (src/imagedex/web/search.js `run`)."""
    return {"q": prefix, "limit": "24", "offset": "0", "facets": "true", "track_total": "10000"}


def keystrokes(
    path: Path, vocab: Vocabulary, seed: int, words: int, settle_s: float = 0.0
) -> dict[str, list[float]]:
    """Every keystroke of typing `words` words into the search page, each its HTTP request to a
    real server (bench_web.py's: uvicorn on 127.0.0.1) over the index at `path`, timed end to
    end by one keep-alive client; grouped by how many characters the box holds. The first
    request starts the server's background builds (column cache, text postings); typing starts
    `settle_s` later."""
    import tempfile

    import httpx

    import bench_web

    samples: dict[str, list[float]] = {}
    console.print(f"keystrokes: typing {words} words against a real server")
    with tempfile.TemporaryDirectory(prefix="bench-index-keys-") as tmp:
        process, url = bench_web.start_server(Path(tmp), path)
        try:
            with httpx.Client(base_url=url, timeout=300) as client:
                client.get("/api/search", params=keystroke_request("zz")).raise_for_status()
                time.sleep(settle_s)
                for word in keystroke_words_for(vocab, seed, words):
                    for n in range(1, len(word) + 1):
                        t0 = time.perf_counter()
                        response = client.get("/api/search", params=keystroke_request(word[:n]))
                        elapsed = time.perf_counter() - t0
                        response.raise_for_status()
                        if "facets" not in response.json():
                            raise SystemExit("a keystroke's answer has no facets")
                        samples.setdefault(str(n) if n < 4 else "4+", []).append(elapsed)
        finally:
            process.terminate()
            process.wait(timeout=30)
    return samples


# -- reporting ----------------------------------------------------------------------------------


def _stats(s: Series, kind: str) -> dict[str, float]:
    if kind == "mix":
        return common.percentiles(s.samples["frequent"] + s.samples["rare"])
    return common.percentiles(s.samples[kind])


def _median_total(s: Series, kind: str) -> int:
    values = s.totals["frequent"] + s.totals["rare"] if kind == "mix" else s.totals[kind]
    return int(statistics.median(values))


def rows_for(results: list[SizeResult]) -> list[tuple[str, list[str]]]:
    """(metric, one cell per size) rows shared by the console and the markdown table."""
    rows: list[tuple[str, list[str]]] = []
    rows.append(
        ("bulk upsert, docs/s (batches of 500)", [_rate(r.build["docs_per_s"]) for r in results])
    )
    rows.append(
        (
            "  first / last 10% of the build, docs/s",
            [
                f"{_rate(r.build['first10_docs_per_s'])} / {_rate(r.build['last10_docs_per_s'])}"
                for r in results
            ],
        )
    )
    rows.append(
        ("re-upsert existing docs, docs/s", [_rate(r.reupsert_docs_per_s) for r in results])
    )
    rows.append(
        (
            f"insert new docs {WORKER_BATCH} at a time (worker), docs/s",
            [_rate(r.worker_docs_per_s) for r in results],
        )
    )
    rows.append(("delete one at a time, docs/s", [_rate(r.delete_docs_per_s) for r in results]))
    for i, s in enumerate(results[0].series):
        for kind in ("mix", "frequent", "rare"):
            label = f"{s.name}: p50 / p99 ms" if kind == "mix" else f"  {kind} values"
            cells = []
            for r in results:
                st = _stats(r.series[i], kind)
                total = _median_total(r.series[i], kind)
                cells.append(
                    f"{common.fmt_ms(st['p50'])} / {common.fmt_ms(st['p99'])} ({total:,} hits)"
                )
            rows.append((label, cells))
    rows.append(
        (
            "top_labels(20): p50 / p99 ms",
            [
                f"{common.fmt_ms(r.top_labels['p50'])} / {common.fmt_ms(r.top_labels['p99'])}"
                for r in results
            ],
        )
    )
    rows.append(
        (
            "top_labels(20, min_confidence=90): p50 ms",
            [
                common.fmt_ms(r.top_labels_conf["p50"]) if r.top_labels_conf else "-"
                for r in results
            ],
        )
    )
    for group in ("1", "2", "3", "4+"):
        if any(group in r.keystrokes for r in results):
            cells = []
            for r in results:
                st = common.percentiles(r.keystrokes.get(group, [0.0]))
                cells.append(f"{common.fmt_ms(st['p50'])} / {common.fmt_ms(st['p99'])}")
            rows.append((f"keystroke, {group} character(s) typed: p50 / p99 ms", cells))
    rows.append(
        ("opening the cached index (migrations), s", [f"{r.opened_s:.1f}" for r in results])
    )
    if all(r.columns for r in results):
        rows.append(
            (
                "facet column cache: build s / arrays MB",
                [f"{r.columns['build_s']:.1f} / {r.columns['mb']:.0f}" for r in results],
            )
        )
        rows.append(
            (
                "text postings: build s / arrays MB",
                [f"{r.columns['text_build_s']:.1f} / {r.columns['text_mb']:.0f}" for r in results],
            )
        )
        rows.append(
            (
                "bulk upsert into a fresh index without / with the change log, docs/s",
                [
                    f"{_rate(r.columns['log_without'])} / {_rate(r.columns['log_with'])}"
                    for r in results
                ],
            )
        )
    rows.append(("file size", [common.fmt_bytes(r.files["bytes"]) for r in results]))
    rows.append(("  bytes per document", [f"{r.files['bytes'] / r.size:,.0f}" for r in results]))
    return rows


def _rate(v: float) -> str:
    return f"{v:,.0f}"


def ratio_rows(small: SizeResult, big: SizeResult) -> list[tuple[str, str]]:
    def ratio(a: float, b: float) -> str:
        return f"{b / a:.2f}x" if a > 0 else "-"

    out = [
        ("bulk upsert rate", ratio(small.build["docs_per_s"], big.build["docs_per_s"])),
    ]
    for i, s in enumerate(small.series):
        for kind in ("frequent", "rare"):
            out.append(
                (
                    f"{s.name} p50 ({kind})",
                    ratio(_stats(s, kind)["p50"], _stats(big.series[i], kind)["p50"]),
                )
            )
    out.append(("top_labels(20) p50", ratio(small.top_labels["p50"], big.top_labels["p50"])))
    out.append(("file size", ratio(small.files["bytes"], big.files["bytes"])))
    return out


def targets(results: list[SizeResult]) -> list[str]:
    at = [r for r in results if r.size >= TARGET_SIZE]
    if not at:
        biggest = max(results, key=lambda r: r.size)
        return [f"Targets apply at {TARGET_SIZE:,} documents; largest size run: {biggest.size:,}."]
    r = at[0]
    conf = next(s for s in r.series if "min_confidence" in s.name)
    mix, freq = _stats(conf, "mix")["p50"], _stats(conf, "frequent")["p50"]
    top = r.top_labels["p50"]

    newest = next(s for s in r.series if "sort=newest" in s.name)
    newest_p99 = _stats(newest, "mix")["p99"]
    text = next(s for s in r.series if s.name.startswith("text"))
    text_p99 = _stats(text, "frequent")["p99"]
    broad = [_stats(s, "frequent") for s in r.series if s.facets and SQL_FACETS not in s.name]
    facets_p50 = max(st["p50"] for st in broad)
    every_key = [t for times in r.keystrokes.values() for t in times]
    keys = common.percentiles(every_key) if every_key else None
    lines = [
        f"- label sorted by newest p99 ≤ {TARGET_NEWEST_P99_MS:g} ms: "
        f"{common.verdict(newest_p99 <= TARGET_NEWEST_P99_MS)} (p99 {common.fmt_ms(newest_p99)} ms "
        "over the frequent/rare mix)",
        f"- frequent text (title word) p99 ≤ {TARGET_TEXT_P99_MS:g} ms: "
        f"{common.verdict(text_p99 <= TARGET_TEXT_P99_MS)} (p99 {common.fmt_ms(text_p99)} ms)",
        f"- facets for broad filtered queries (frequent labels, frequent title words) "
        f"≤ {TARGET_FACETS_MS:g} ms: {common.verdict(facets_p50 <= TARGET_FACETS_MS)} "
        f"(the slower kind's p50 {common.fmt_ms(facets_p50)} ms, p99 "
        f"{common.fmt_ms(max(st['p99'] for st in broad))} ms)",
    ]
    if keys:
        lines.append(
            f"- one keystroke of search-as-you-type ≤ {TARGET_KEYSTROKE_MS:g} ms end to end: "
            f"{common.verdict(keys['p50'] <= TARGET_KEYSTROKE_MS)} "
            f"(p50 {common.fmt_ms(keys['p50'])} ms, p99 {common.fmt_ms(keys['p99'])} ms "
            f"over {len(every_key)} keystrokes)"
        )
    return [
        *lines,
        f"- label + min_confidence search p50 ≤ {TARGET_LABEL_CONF_P50_MS:g} ms at "
        f"{r.size:,} documents: {common.verdict(mix <= TARGET_LABEL_CONF_P50_MS)} "
        f"(p50 {common.fmt_ms(mix)} ms over the frequent/rare mix; "
        f"{common.fmt_ms(freq)} ms for frequent labels alone)",
        f"- top-labels ≤ {TARGET_TOP_LABELS_MS:g} ms at {r.size:,} documents: "
        f"{common.verdict(top <= TARGET_TOP_LABELS_MS)} (p50 {common.fmt_ms(top)} ms, "
        f"p99 {common.fmt_ms(r.top_labels['p99'])} ms)",
    ]


def print_results(results: list[SizeResult]) -> None:
    common.print_table(
        console,
        "SQLite index",
        ["metric", *[f"{r.size:,} docs" for r in results]],
        [[metric, *cells] for metric, cells in rows_for(results)],
    )
    if len(results) > 1:
        small, big = results[0], results[-1]
        common.print_table(
            console,
            f"{big.size:,} vs {small.size:,}: slowdown (>1 is slower/bigger)",
            ["metric", "ratio"],
            ratio_rows(small, big),
        )
    for line in targets(results):
        console.print(line)


def markdown(results: list[SizeResult], args: argparse.Namespace, facts: dict[str, Any]) -> str:
    headers = ["metric", *[f"{r.size:,} docs" for r in results]]
    body = [[m.strip().replace("  ", ""), *cells] for m, cells in rows_for(results)]
    # indent sub-rows visibly in markdown
    for row, (metric, _) in zip(body, rows_for(results), strict=True):
        if metric.startswith("  "):
            row[0] = "↳ " + metric.strip()
    first = results[0]
    built = ", ".join(
        f"{r.size:,} on {r.build['built_at']}"
        + (f", load {r.build['load_at_start']}" if "load_at_start" in r.build else "")
        + (
            ", by an earlier sqlite.py (migrated when the cache was first opened)"
            if r.build.get("source_hash") != source_hash()
            else ""
        )
        for r in results
    )
    lines = [
        "## Search index (SQLite)",
        "",
        common.machine_markdown(facts),
        "",
        "Synthetic documents (`bench/bench_index.py`, seed "
        f"{args.seed}): {N_LABELS} labels with Zipf(s={ZIPF_S:g}) frequencies (the most common "
        f"label is on {first.top_share:.0%} of the images), 3-5 labels per image with confidence "
        f"1-99, 1-3 parents per label from {N_PARENTS} parent names, aliases on 15% of labels, "
        "titles of 2-4 words (plus a number on 40%), OCR text on 10%, moderation labels on 2%; "
        "like the pipeline's defaults each document also has a description, a perceptual hash "
        f"and a {EMBEDDING_DIM}-d embedding. Bulk upsert is timed "
        "while the cached index is built from empty, in batches of 500 (time inside `upsert` "
        f"only; builds used here: {built}); re-upsert overwrites {args.reupsert:,} existing "
        f"documents unchanged; the worker row inserts {args.worker_docs:,} new documents "
        f"{WORKER_BATCH} per `upsert` (one transaction each), which are then deleted one by one. "
        f"Each relevance query kind runs {args.queries} queries per round (half frequent values: "
        f"the {len(FREQUENT_RANKS)} most common labels/words, the {len(FREQUENT_PARENT_RANKS)} "
        "most common parents; half rare: label ranks "
        f"{RARE_LABEL_RANKS.start}-{RARE_LABEL_RANKS.stop}, word ranks "
        f"{RARE_WORD_RANKS.start}-{RARE_WORD_RANKS.stop}, parent ranks "
        f"{RARE_PARENT_RANKS.start}-{RARE_PARENT_RANKS.stop}), {args.rounds} rounds after a "
        "warm-up, "
        "in random order, `limit=20`, warm page cache; the `sort=newest` row is one round. "
        'Latencies include counting the total and decoding the 20 documents; "hits" is the '
        "median total.",
        "",
        common.md_table(headers, body),
        "",
    ]
    if len(results) > 1:
        small, big = results[0], results[-1]
        lines += [
            f"Ratio {big.size:,} / {small.size:,} (above 1 = slower or bigger):",
            "",
            common.md_table(["metric", "ratio"], ratio_rows(small, big)),
            "",
        ]
    spread = []
    for r in results:
        conf = next(s for s in r.series if "min_confidence" in s.name)
        spread.append(
            f"{r.size:,}: label+confidence p50 per round "
            + ", ".join(common.fmt_ms(x) for x in conf.round_p50)
            + " ms; top_labels p50 per round "
            + ", ".join(common.fmt_ms(x) for x in r.top_labels_round_p50)
            + " ms"
        )
    lines += ["Noise (per-round medians): " + "; ".join(spread) + ".", ""]
    big = results[-1]
    if big.files["tables"]:
        lines += [
            f"Space at {big.size:,} documents:",
            "",
            common.md_table(
                ["table / index", "size", "share"],
                [
                    (name, common.fmt_bytes(b), f"{b / max(1, big.files['bytes']):.0%}")
                    for name, b in big.files["tables"].items()
                ],
            ),
            "",
        ]
    if float(facts["load"]) >= 1.0:
        lines += [
            f"Other jobs were running on this shared machine (1-min load average {facts['load']} "
            f"on {facts['nproc']} CPUs at the start): throughputs are pessimistic and tails "
            "noisy; the medians above are the numbers to compare.",
            "",
        ]
    if any(r.keystrokes for r in results):
        words = max(len(r.keystrokes.get("1", [])) for r in results)
        lines += [
            f"Keystrokes: {words} frequent title words (4 letters or more) typed one character "
            "at a time, each keystroke the request the search page sends after it "
            "(`GET /api/search` with `q`, `limit=24`, `offset=0`, `facets=true`, "
            "`track_total=10000`: matches counted exactly up to 10,000, past that the answer "
            "says `total_is_lower_bound` and the page 'More than 10,000'), to a real "
            "server (bench_web.py's: uvicorn, one process, on 127.0.0.1) over the same index "
            "file, timed end to end by one keep-alive httpx client; the page waits for a 200 ms "
            "pause in typing, so a fast typist sends fewer of them. The first request (`zz`) "
            "starts the server's background builds of the column cache and the text postings; "
            "typing starts twice their in-process build time later.",
            "",
        ]
    lines += [
        "How SQLite answers (`src/imagedex/index/sqlite_pages.py`): a single label walks its "
        "(term, confidence) key best first and stops after the page; label queries in date or "
        "title order walk that index of `docs` and probe each row's labels (when the matches "
        "are many; a budget of SQLite VM steps hands matches that lie at the far end of the "
        "order back to the general plan); text alone in plain ASCII words (the last one a "
        "prefix: what the search box sends) is matched and ranked by the text postings "
        "(`src/imagedex/index/sqlite_text.py`: FTS5's postings copied into numpy arrays, "
        "bm25 computed as FTS5 computes it, to the same doubles; built before the query rows "
        "here, in the table's build row), anything else by bm25 inside FTS5; in both only the "
        "page plus the matches tied with its last score are joined for the tie-breaks; "
        "the FTS5 table keeps prefix indexes for 1-3 characters, so a short prefix reads one "
        "doclist instead of merging every term that starts with it. "
        "Facets over 1/2000 of the images or more are counted by the column cache "
        "(`src/imagedex/index/sqlite_columns.py`: numpy arrays kept fresh by a change log; "
        "`bincount` over the query's mask); smaller ones by SQL, leaf labels from a partial "
        "covering index (`label_terms_leaves`). Every plan gives the general plan's rows in "
        "its order (`tests/test_index_sqlite_pages.py`, `tests/test_index_sqlite_text.py`). "
        "Text with non-ASCII words, and any text query after a write until the postings are "
        "rebuilt (in the background), still pays FTS5's bm25 for every match (about 0.75 µs "
        "each).",
        "",
    ]
    lines += ["Targets:", "", *targets(results)]
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------------


def parse_sizes(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        part = part.strip().lower().replace("_", "")
        mult = 1
        if part.endswith("k"):
            mult, part = 1000, part[:-1]
        elif part.endswith("m"):
            mult, part = 1_000_000, part[:-1]
        out.append(int(float(part) * mult))
    if any(n < 1 for n in out):
        raise argparse.ArgumentTypeError("sizes must be positive")
    return sorted(set(out))


def main(argv: Sequence[str] | None = None) -> int:
    parser = common.arg_parser(__doc__)
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=parse_sizes("100000,1000000"),
        help="comma-separated document counts (100k, 1m accepted)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 10k docs, fewer queries, docs/benchmarks.md untouched",
    )
    parser.add_argument("--rebuild", action="store_true", help="ignore cached indexes")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--queries",
        type=int,
        default=300,
        help="queries per kind per round (half frequent, half rare)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--reupsert",
        type=int,
        default=2000,
        help="existing documents to overwrite when timing re-upsert",
    )
    common.add_write_options(parser)
    parser.add_argument(
        "--sort-queries", type=int, default=40, help="label queries sorted by newest (one round)"
    )
    parser.add_argument(
        "--worker-docs",
        type=int,
        default=800,
        help="new documents inserted in worker-sized batches, then deleted again",
    )
    parser.add_argument(
        "--facet-queries", type=int, default=20, help="facets per filter kind (one round)"
    )
    parser.add_argument(
        "--keystroke-words",
        type=int,
        default=5,
        help="words typed into a real server's search, one request per keystroke (0: none)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.facet_queries = min(args.facet_queries, 6)
        args.keystroke_words = min(args.keystroke_words, 2)
        args.sizes = [10_000]
        args.queries = min(args.queries, 200)
        args.rounds = min(args.rounds, 2)
        args.reupsert = min(args.reupsert, 500)
        args.sort_queries = min(args.sort_queries, 20)
        args.worker_docs = min(args.worker_docs, 200)
    facts = common.machine_facts()
    console.print(common.machine_markdown(facts))
    vocab = make_vocabulary(args.seed)
    results = [
        measure(
            vocab,
            n,
            args.seed,
            args.rebuild,
            args.queries,
            args.rounds,
            min(args.reupsert, n),
            args.sort_queries,
            args.worker_docs,
            args.facet_queries,
            args.keystroke_words,
        )
        for n in args.sizes
    ]
    print_results(results)
    if common.should_write(args):
        common.publish("index", markdown(results, args, facts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
