"""`imagedex restore`: check a backup, then fill an empty data dir from it (and an empty local
bucket, and the index and queue files where the settings put them).

Restore only fills what is empty. Merging a backup into a collection would mix two queues and
two indexes; replacing one would lose what is stored there. Everything is written under hidden
names beside its final place and renamed into place once every checksum has matched, so a
corrupt or incomplete backup leaves the targets exactly as they were.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagedex.backup.layout import ROLES, bucket_folder, role_path
from imagedex.backup.manifest import (
    OBJECTS,
    BackupError,
    BadBackupError,
    Progress,
    check_file,
    copy_hashing,
    corrupt,
    member,
    missing,
    no_progress,
    read_manifest,
)
from imagedex.config import Settings
from imagedex.errors import InvalidKeyError
from imagedex.storage.base import content_etag, validate_key
from imagedex.storage.local import LocalObjectStore


def verify_backup(src: Path, progress: Progress = no_progress) -> dict[str, Any]:
    """Check every checksum of the backup in `src` without writing anything; a summary."""
    src = src.expanduser().resolve()
    manifest = read_manifest(src)
    entries = [*manifest["stores"], *manifest["files"]]
    for done, entry in enumerate(entries):
        progress("checksums", done, len(entries))
        check_file(src, entry)
    progress("checksums", len(entries), len(entries))
    for _ in _verified_objects(src, manifest, progress):
        pass
    return {"backup": str(src), "ok": True, **_summary(manifest)}


@dataclass
class _Plan:
    """Where each part of the backup goes, and the hidden folders it is written to first."""

    data_dir: Path
    data_staging: Path | None = None
    bucket: Path | None = None
    bucket_staging: Path | None = None
    stores: dict[str, Path] = field(default_factory=dict)  # store name -> final path
    outside: dict[Path, Path] = field(default_factory=dict)  # final -> staged, beyond data_dir
    placed: list[Path] = field(default_factory=list)  # what this restore created, to undo


def restore_backup(
    settings: Settings, src: Path, progress: Progress = no_progress
) -> dict[str, Any]:
    """Fill the empty data dir of `settings` from the backup in `src`; a summary."""
    src = src.expanduser().resolve()
    manifest = read_manifest(src)
    plan = _plan(settings, manifest)
    try:
        _write(src, manifest, plan, progress)
        _move_into_place(plan)
    except BaseException:
        _undo(plan)
        raise
    summary = _summary(manifest)
    return {
        "restored_from": str(src),
        "data_dir": str(plan.data_dir),
        "bucket": str(plan.bucket) if plan.bucket is not None else None,
        **summary,
    }


def _summary(manifest: dict[str, Any]) -> dict[str, Any]:
    objects = manifest["objects"]
    return {
        "made_at": manifest.get("finished_at"),
        "imagedex_version": manifest.get("imagedex_version"),
        "stores": [entry["name"] for entry in manifest["stores"]],
        "files": [entry["name"] for entry in manifest["files"]],
        "objects": objects["count"] if objects else None,
        "bytes": objects["bytes"] if objects else None,
        "counts": manifest.get("counts", {}),
        "not_covered": manifest.get("not_covered", []),
    }


# -- where things go ----------------------------------------------------------------------------


def _empty_or_absent(path: Path, what: str) -> None:
    """Refuses `path` unless it is absent or an empty folder."""
    if not path.exists():
        return
    if not path.is_dir():
        raise BackupError(f"{what} {path} is a file: restore into a new or empty folder")
    if any(path.iterdir()):
        raise BackupError(
            f"{what} {path} is not empty: restore only fills an empty one, so nothing stored "
            "there is lost. Move it aside, or choose a new folder with --data-dir"
        )


def _plan(settings: Settings, manifest: dict[str, Any]) -> _Plan:
    data_dir = settings.data_dir.expanduser().resolve()
    _empty_or_absent(data_dir, "the data dir")
    plan = _Plan(data_dir)
    for entry in manifest["stores"]:
        role = entry.get("role") or ""
        if not role:
            plan.stores[entry["name"]] = data_dir / entry["name"]
            continue
        if role not in ROLES:
            raise BadBackupError(f"the backup names an unknown store role {role!r}")
        path = role_path(settings, role)
        setting = ROLES[role][0]
        if path is None:
            raise BackupError(
                f"the backup holds a SQLite {role}, but IMAGEDEX_{setting.upper()} names "
                f"{getattr(settings, setting)}: restore with IMAGEDEX_{setting.upper()}=sqlite"
                + (", then move it with `imagedex index copy`" if role == "index" else "")
            )
        path = path.expanduser().resolve()
        if not path.is_relative_to(data_dir) and path.exists():
            raise BackupError(
                f"the {role} file {path} exists: restore only fills what is empty, so nothing "
                "stored there is lost. Move it aside first"
            )
        plan.stores[entry["name"]] = path
    objects = manifest["objects"]
    if objects is not None:
        plan.bucket = _bucket(settings, objects["bucket"], data_dir)
    return plan


def _bucket(settings: Settings, name: str, data_dir: Path) -> Path:
    folder = bucket_folder(settings)
    if folder is None:
        raise BackupError(
            f"the backup holds the objects of a local bucket, but IMAGEDEX_STORE names "
            f"{settings.store_url}: restore into a local folder, then copy the objects there "
            "(e.g. `aws s3 sync`)"
        )
    if folder.name != name:
        raise BackupError(
            f"the backup's documents and queued events name the bucket {name!r}, but the store "
            f"{folder} is the bucket {folder.name!r}: restore into a folder named {name!r}"
        )
    if not folder.is_relative_to(data_dir):
        _empty_or_absent(folder, "the bucket folder")
    return folder


# -- writing ------------------------------------------------------------------------------------


def _staging_beside(final: Path) -> Path:
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{final.name}.restoring-", dir=final.parent))


def _staged(plan: _Plan, final: Path) -> Path:
    """Where a file that belongs at `final` is written first."""
    if plan.data_staging is not None and final.is_relative_to(plan.data_dir):
        return plan.data_staging / final.relative_to(plan.data_dir)
    final.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{final.name}.restoring-", dir=final.parent)
    os.close(handle)
    Path(name).unlink()  # copy_hashing creates it afresh
    plan.outside[final] = Path(name)
    return Path(name)


def _write(src: Path, manifest: dict[str, Any], plan: _Plan, progress: Progress) -> None:
    plan.data_staging = _staging_beside(plan.data_dir)
    entries = [(e, plan.stores[e["name"]]) for e in manifest["stores"]]
    entries += [(e, plan.data_dir / e["name"]) for e in manifest["files"]]
    for done, (entry, final) in enumerate(entries):
        progress("stores", done, len(entries))
        source = member(src, entry["file"])
        if not source.is_file():
            raise missing(src, entry["file"])
        copied = copy_hashing(source, _staged(plan, final))
        if (copied.sha256, copied.size) != (entry["sha256"], entry["bytes"]):
            raise corrupt(src, entry, copied.sha256, copied.size)
    progress("stores", len(entries), len(entries))
    if plan.bucket is None:
        return
    if plan.bucket.is_relative_to(plan.data_dir):
        plan.bucket_staging = plan.data_staging / plan.bucket.relative_to(plan.data_dir)
    else:
        plan.bucket_staging = _staging_beside(plan.bucket)
    store = LocalObjectStore(plan.bucket_staging)
    for obj, data in _verified_objects(src, manifest, progress):
        store.put(obj["key"], data, str(obj.get("content_type") or ""), obj.get("metadata") or {})


def _verified_objects(
    src: Path, manifest: dict[str, Any], progress: Progress
) -> Iterator[tuple[dict[str, Any], bytes]]:
    """Each object of the backup with its bytes, once they match the listed size and SHA-256."""
    objects = manifest["objects"]
    if objects is None:
        return
    listing = check_file(src, objects["list"])
    total = int(objects["count"])
    done = 0
    with listing.open(encoding="utf-8") as lines:
        for line in lines:
            try:
                obj = json.loads(line)
                key = validate_key(str(obj["key"]))
                expected = (str(obj["sha256"]), int(obj["size"]))
            except (ValueError, KeyError, TypeError, InvalidKeyError) as exc:
                raise BadBackupError(
                    f"the backup in {src} is corrupt: objects.jsonl: {exc}"
                ) from exc
            path = member(src / OBJECTS, key)
            try:
                data = path.read_bytes()
            except (FileNotFoundError, IsADirectoryError) as exc:
                raise missing(src, f"{OBJECTS}/{key}") from exc
            if (hashlib.sha256(data).hexdigest(), len(data)) != expected or (
                obj.get("etag") and content_etag(data) != obj["etag"]
            ):
                raise BadBackupError(
                    f"the backup in {src} is corrupt: {OBJECTS}/{key} does not match its checksum"
                )
            done += 1
            progress("objects", done, total)
            yield obj, data
    if done != total:
        raise BadBackupError(
            f"the backup in {src} is incomplete: objects.jsonl lists {done} objects, "
            f"the manifest {total}"
        )


def _move_into_place(plan: _Plan) -> None:
    moves = [(staged, final) for final, staged in plan.outside.items()]
    bucket, staged_bucket = plan.bucket, plan.bucket_staging
    beside_data_dir = bucket is not None and not bucket.is_relative_to(plan.data_dir)
    if bucket is not None and staged_bucket is not None and beside_data_dir:
        moves.append((staged_bucket, bucket))
    if plan.data_staging is not None:
        moves.append((plan.data_staging, plan.data_dir))
    for staged, final in moves:
        if staged.is_dir() and final.is_dir():
            # the folder stays (it may be a mount point, with its owner and mode): its entries
            # move in, each in one rename
            for child in sorted(staged.iterdir()):
                _rename(child, final / child.name, plan)
            staged.rmdir()
        else:
            _rename(staged, final, plan)


def _rename(staged: Path, final: Path, plan: _Plan) -> None:
    if final.exists() or final.is_symlink():
        raise BackupError(f"{final} appeared during the restore: nothing was restored")
    try:
        staged.rename(final)
    except OSError as exc:
        raise BackupError(f"cannot move the restored files to {final}: {exc.strerror}") from exc
    plan.placed.append(final)


def _undo(plan: _Plan) -> None:
    """Remove what this restore wrote; the targets were empty or absent before it started."""
    for final in reversed(plan.placed):
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final, ignore_errors=True)
        else:
            final.unlink(missing_ok=True)
    for staging in (plan.data_staging, plan.bucket_staging):
        if staging is not None and staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    for staged in plan.outside.values():
        staged.unlink(missing_ok=True)
