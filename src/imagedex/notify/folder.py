"""`folder:/srv/reports`: each message written as files a watcher can pick up.

Folders lie below one root (`delivery_folder_root`, by default `$DATA_DIR/deliveries`), so whoever
may save a target cannot make imagedex write into `/etc/cron.d` or a home directory. The path is
checked with its symlinks resolved when saved and again when sent; the files are then written
through directory handles opened from the root without following links, so a symlink put in
place between the check and the write leads nowhere.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
from datetime import datetime
from pathlib import Path
from typing import Self

from imagedex.config import Settings
from imagedex.errors import ConfigError
from imagedex.notify.message import Message
from imagedex.notify.senders import SendError, webhook_body
from imagedex.notify.targets import Target

_UNSAFE = re.compile(r"[^\w.\-]+")
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
ROOT_SETTING = "delivery_folder_root"


def folder_root(settings: Settings) -> Path:
    """Where folder targets must lie, symlinks resolved (it need not exist yet)."""
    configured = settings.delivery_folder_root
    root = Path(configured).expanduser() if configured else Path(settings.data_dir) / "deliveries"
    return root.resolve()


class FolderTarget(Target):
    """`address` is the directory, `~` expanded; a relative one lies below the root."""

    kind = scheme = "folder"

    @classmethod
    def parse(cls, rest: str) -> Self:
        path = rest.strip()
        if not path:
            raise ConfigError("folder: needs a directory path")
        if "\0" in path:
            raise ConfigError("folder: a path cannot contain a NUL character")
        return cls(str(Path(path).expanduser()))

    def check(self, settings: Settings) -> None:
        self.below_root(settings)

    def below_root(self, settings: Settings) -> tuple[Path, Path]:
        """The root and the folder's path below it, symlinks resolved; ConfigError when the
        folder lies elsewhere."""
        root = folder_root(settings)
        real = (root / self.address).resolve()  # an absolute address replaces the root
        if not real.is_relative_to(root):
            raise ConfigError(
                f"folder: {self.address} is outside the delivery folder root {root}: choose a "
                f"folder below it (folder:NAME is {root}/NAME), or set {ROOT_SETTING}"
            )
        return root, real.relative_to(root)

    def shown(self) -> str:
        return self.address  # a local path, shown so that an operator knows where to look

    def send(self, message: Message, settings: Settings, now: datetime, delivery_id: str) -> None:
        """Attachments first, then `<stem>.txt`, then `<stem>.json` last: a watcher that waits for
        the JSON finds everything complete. Each file appears atomically (write, then rename)."""
        try:
            root, below = self.below_root(settings)
        except ConfigError as exc:
            raise SendError(str(exc), permanent=True) from exc
        try:
            folder = open_below(root, below)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # a link put in place since the check
                raise SendError(
                    f"folder: {self.address} is not a folder below {root}", True
                ) from exc
            raise SendError(f"cannot write to {self.address}: {exc.strerror or exc}") from exc
        try:
            stem = f"{now.strftime('%Y%m%dT%H%M%SZ')}-{delivery_id[:8]}"
            files = []
            for attachment in message.attachments:
                safe = _UNSAFE.sub("_", attachment.filename).strip("._") or "attachment"
                name = f"{stem}-{safe}"
                _write_atomic(folder, name, attachment.data)
                files.append({"filename": name, "content_type": attachment.content_type})
            text = f"{message.subject}\n\n{message.text}\n".encode()
            _write_atomic(folder, f"{stem}.txt", text)
            meta = {**webhook_body(message, now), "attachments": files}
            _write_atomic(folder, f"{stem}.json", json.dumps(meta, indent=2).encode())
        except OSError as exc:
            raise SendError(f"cannot write to {self.address}: {exc.strerror or exc}") from exc
        finally:
            os.close(folder)


def open_below(root: Path, below: Path) -> int:
    """A handle on root/below, its folders created as needed, none of them followed if a link."""
    root.mkdir(parents=True, exist_ok=True)
    handle = os.open(root, _DIRECTORY)
    for part in below.parts:
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, dir_fd=handle)
            child = os.open(part, _DIRECTORY | os.O_NOFOLLOW, dir_fd=handle)
        finally:
            os.close(handle)
        handle = child
    return handle


def _write_atomic(folder: int, name: str, data: bytes) -> None:
    temporary = f".tmp-{secrets.token_hex(8)}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(temporary, flags, 0o600, dir_fd=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=folder)
        raise
