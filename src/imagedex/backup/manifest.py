"""The backup format: the manifest, checksummed copies, and the errors a bad backup gives."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

from imagedex.errors import ImagedexError

FORMAT = "imagedex-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
STORES = "stores"
FILES = "files"
OBJECTS = "objects"
OBJECT_LIST = "objects.jsonl"
_CHUNK = 1 << 20

#: (stage, done, total or None): what long work reports as it goes
Progress = Callable[[str, int, int | None], None]


def no_progress(_stage: str, _done: int, _total: int | None) -> None:
    """The default progress report: nothing."""


class BackupError(ImagedexError):
    """A backup or restore that cannot be done as asked (the message says what to do)."""


class BadBackupError(BackupError):
    """A backup that is incomplete, corrupt or not a backup at all."""


class Copied(NamedTuple):
    sha256: str
    size: int
    md5: str  # the ETag a local or single-part S3 object has


def copy_hashing(source: Path, target: Path, mode: int = 0o600) -> Copied:
    """Copy `source` to the new file `target` in chunks, hashing what was copied."""
    sha256 = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with source.open("rb") as reader, os.fdopen(fd, "wb") as writer:
        for chunk in iter(lambda: reader.read(_CHUNK), b""):
            sha256.update(chunk)
            md5.update(chunk)
            writer.write(chunk)
            size += len(chunk)
        writer.flush()
        os.fsync(writer.fileno())
    return Copied(sha256.hexdigest(), size, md5.hexdigest())


def file_sha256(path: Path) -> tuple[str, int]:
    """The SHA-256 and size of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as reader:
        for chunk in iter(lambda: reader.read(_CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def member(folder: Path, relative: str) -> Path:
    """`folder/relative` for a path read from a manifest, which must stay inside the backup."""
    parts = PurePosixPath(relative).parts
    if not parts or relative.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise BadBackupError(f"the backup names the unsafe path {relative!r}: it is not trusted")
    return folder.joinpath(*parts)


def missing(folder: Path, relative: str) -> BadBackupError:
    return BadBackupError(f"the backup in {folder} is incomplete: {relative} is missing")


def corrupt(folder: Path, entry: dict[str, Any], sha256: str, size: int) -> BadBackupError:
    return BadBackupError(
        f"the backup in {folder} is corrupt: {entry['file']} does not match its checksum "
        f"(expected {entry['bytes']} bytes, SHA-256 {str(entry['sha256'])[:12]}..., "
        f"found {size} bytes, {sha256[:12]}...)"
    )


def check_file(folder: Path, entry: dict[str, Any]) -> Path:
    """The file an entry of the manifest names, once its size and SHA-256 match."""
    path = member(folder, str(entry["file"]))
    if not path.is_file():
        raise missing(folder, str(entry["file"]))
    sha256, size = file_sha256(path)
    if sha256 != entry["sha256"] or size != entry["bytes"]:
        raise corrupt(folder, entry, sha256, size)
    return path


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    path = folder / MANIFEST
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    path.chmod(0o600)


_ENTRY_KEYS = {"file", "sha256", "bytes"}


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of the backup in `folder`, checked for shape (not yet against the files)."""
    if not folder.is_dir():
        raise BadBackupError(f"no backup at {folder}: it is not a folder")
    path = folder / MANIFEST
    if not path.is_file():
        raise BadBackupError(
            f"{folder} is not a complete imagedex backup: it has no {MANIFEST} "
            "(a backup writes it last, so the backup was interrupted or only partly copied)"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BadBackupError(f"the backup in {folder} is corrupt: {MANIFEST}: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BadBackupError(f"{folder / MANIFEST} is not an imagedex backup manifest")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise BadBackupError(f"the backup in {folder} is corrupt: bad format_version {version!r}")
    if version > FORMAT_VERSION:
        raise BackupError(
            f"the backup in {folder} has format {version}, made by imagedex "
            f"{manifest.get('imagedex_version', '?')}; this imagedex reads format "
            f"{FORMAT_VERSION} and older: upgrade imagedex to restore it"
        )
    try:
        entries = [*manifest["stores"], *manifest["files"]]
        objects = manifest["objects"]
        if objects is not None:
            entries.append(objects["list"])
            int(objects["count"])
        for entry in entries:
            if not set(entry) >= _ENTRY_KEYS or not isinstance(entry["bytes"], int):
                raise TypeError(f"entry {entry!r} lacks file, sha256 or bytes")
            member(folder, str(entry["file"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise BadBackupError(f"the backup in {folder} is corrupt: {MANIFEST}: {exc}") from exc
    return manifest
