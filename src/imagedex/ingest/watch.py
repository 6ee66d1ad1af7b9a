"""A watched folder: files that appear are uploaded (with their S3 event), deleted ones removed."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from imagedex.errors import ImagedexError, ObjectNotFoundError
from imagedex.ingest.imaging import require_image
from imagedex.ingest.upload import IMAGE_SUFFIXES, notify, upload_bytes
from imagedex.services import Services
from imagedex.storage.base import content_etag

log = logging.getLogger("imagedex.ingest.watch")

SETTLE_SECONDS = 0.5  # a file must be quiet this long before upload (writers still busy)


class FolderWatcher:
    def __init__(self, services: Services, folder: Path) -> None:
        self.services = services
        self.folder = Path(folder).resolve()
        self._pending: dict[Path, float] = {}
        self._removed: set[Path] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._observer = Observer()
        self._flusher = threading.Thread(
            target=self._flush_loop, name="imagedex-watch", daemon=True
        )

    def key_for(self, path: Path) -> str:
        return f"{self.folder.name}/{path.resolve().relative_to(self.folder).as_posix()}"

    def _wanted(self, path: Path) -> bool:
        try:
            rel = path.resolve().relative_to(self.folder)
        except ValueError:
            return False
        return path.suffix.lower() in IMAGE_SUFFIXES and not any(
            part.startswith(".") for part in rel.parts
        )

    def scan(self) -> int:
        """Upload every image in the folder that the store lacks or holds in another version."""
        uploaded = 0
        for path in sorted(self.folder.rglob("*")):
            if path.is_file() and self._wanted(path) and self._upload_if_changed(path):
                uploaded += 1
        return uploaded

    def _upload_if_changed(self, path: Path) -> bool:
        key = self.key_for(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            log.warning("cannot read %s: %s", path, exc)
            return False
        try:
            require_image(data)
        except ImagedexError as exc:
            log.warning("not uploading %s: %s", path, exc)
            return False
        try:
            current = self.services.store.head(key)
            if current.etag == content_etag(data):
                return False
        except ObjectNotFoundError:
            pass
        try:
            upload_bytes(self.services, key, data)
        except ImagedexError as exc:
            log.warning("cannot upload %s: %s", path, exc)
            return False
        log.info("uploaded %s as %s", path, key)
        return True

    def _remove(self, path: Path) -> None:
        key = self.key_for(path)
        try:
            info = self.services.store.head(key)
        except (ObjectNotFoundError, ImagedexError):
            return
        self.services.store.delete(key)
        notify(self.services, info, kind="removed")
        log.info("removed %s", key)

    def start(self) -> None:
        handler = _Handler(self)
        self._observer.schedule(handler, str(self.folder), recursive=True)
        self._observer.start()
        self._flusher.start()

    def stop(self) -> None:
        self._stop.set()
        self._observer.stop()
        self._observer.join(timeout=5)
        if self._flusher.is_alive():
            self._flusher.join(timeout=5)

    def touched(self, path: Path) -> None:
        if self._wanted(path):
            with self._lock:
                self._pending[path] = time.monotonic()
                self._removed.discard(path)

    def deleted(self, path: Path) -> None:
        if self._wanted(path):
            with self._lock:
                self._pending.pop(path, None)
                self._removed.add(path)

    def _flush_loop(self) -> None:
        while not self._stop.wait(0.2):
            self.flush()
        self.flush(force=True)

    def flush(self, force: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            ready = [p for p, t in self._pending.items() if force or now - t >= SETTLE_SECONDS]
            for path in ready:
                del self._pending[path]
            removed, self._removed = self._removed, set()
        for path in removed:
            self._remove(path)
        for path in ready:
            if path.is_file():
                self._upload_if_changed(path)


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: FolderWatcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        src = Path(str(event.src_path))
        if event.event_type in ("created", "modified", "closed"):
            self.watcher.touched(src)
        elif event.event_type == "deleted":
            self.watcher.deleted(src)
        elif event.event_type == "moved":
            self.watcher.deleted(src)
            self.watcher.touched(Path(str(event.dest_path)))
