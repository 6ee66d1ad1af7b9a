"""`folder:/srv/reports`: each message written as files a watcher can pick up."""

from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Self

from imagedex.config import Settings
from imagedex.errors import ConfigError
from imagedex.notify.message import Message
from imagedex.notify.senders import SendError, webhook_body
from imagedex.notify.targets import Target

_UNSAFE = re.compile(r"[^\w.\-]+")


class FolderTarget(Target):
    """`address` is the directory, `~` expanded."""

    kind = scheme = "folder"

    @classmethod
    def parse(cls, rest: str) -> Self:
        path = rest.strip()
        if not path:
            raise ConfigError("folder: needs a directory path")
        return cls(str(Path(path).expanduser()))

    def shown(self) -> str:
        return self.address  # a local path, shown so that an operator knows where to look

    def send(self, message: Message, settings: Settings, now: datetime, delivery_id: str) -> None:
        """Attachments first, then `<stem>.txt`, then `<stem>.json` last: a watcher that waits for
        the JSON finds everything complete. Each file appears atomically (write, then rename)."""
        folder = Path(self.address)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            stem = f"{now.strftime('%Y%m%dT%H%M%SZ')}-{delivery_id[:8]}"
            files = []
            for attachment in message.attachments:
                safe = _UNSAFE.sub("_", attachment.filename).strip("._") or "attachment"
                name = f"{stem}-{safe}"
                _write_atomic(folder / name, attachment.data)
                files.append({"filename": name, "content_type": attachment.content_type})
            text = f"{message.subject}\n\n{message.text}\n".encode()
            _write_atomic(folder / f"{stem}.txt", text)
            meta = {**webhook_body(message, now), "attachments": files}
            _write_atomic(folder / f"{stem}.json", json.dumps(meta, indent=2).encode())
        except OSError as exc:
            raise SendError(f"cannot write to {folder}: {exc}") from exc


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
