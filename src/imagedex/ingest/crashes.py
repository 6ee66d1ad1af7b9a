"""Did the last worker on this data dir die? One marker file per running worker process.

A worker killed by the kernel (out of memory) or `kill -9` leaves its messages received; they come
back after the visibility timeout with one more receive each, every message of its batch alike,
so a crash loop would dead-letter the innocent messages beside the one that kills it. A worker
that finds the marker of a process that is gone starts careful: for a while it receives one
message at a time and prepares and recognises it alone, so that only the message that kills it
again is counted again.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


class CrashJournal:
    def __init__(self, data_dir: Path) -> None:
        self.folder = data_dir / "workers"
        self._host = socket.gethostname()
        self._mine: Path | None = None

    def start(self) -> bool:
        """Leave this process's marker; True when a dead worker of this host left one."""
        crashed = False
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            for marker in self.folder.glob(f"{self._host}-*"):
                pid = marker.name.rsplit("-", 2)[-2]
                if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                    crashed = True
                    marker.unlink(missing_ok=True)
            self._mine = self.folder / f"{self._host}-{os.getpid()}-{id(self):x}"
            self._mine.touch()
        except OSError:
            self._mine = None  # a read-only data dir: no crash detection, nothing else lost
        return crashed

    def stop(self) -> None:
        if self._mine is not None:
            with contextlib.suppress(OSError):
                self._mine.unlink(missing_ok=True)
            self._mine = None
