"""Work queues with SQS semantics: the embedded SQLite queue (and SQS, later)."""

from __future__ import annotations

from pathlib import Path

from imagedex.errors import ConfigError
from imagedex.queue.base import DeadLetter, Message, QueueStats, WorkQueue
from imagedex.queue.sqlite import SqliteQueue

__all__ = ["DeadLetter", "Message", "QueueStats", "SqliteQueue", "WorkQueue", "open_queue"]


def open_queue(url: str, data_dir: Path, max_receive_count: int = 3) -> WorkQueue:
    """`sqlite` (default, in the data dir), `sqlite:///path/queue.db`, `sqs://name` or a URL."""
    if url in ("", "sqlite"):
        return SqliteQueue(data_dir / "queue.sqlite3", max_receive_count=max_receive_count)
    if url.startswith("sqlite:///"):
        return SqliteQueue(Path(url.removeprefix("sqlite://")), max_receive_count=max_receive_count)
    if url.startswith("sqs://"):
        from imagedex.queue.sqs import SqsQueue

        return SqsQueue(url.removeprefix("sqs://"), max_receive_count=max_receive_count)
    if url.startswith("https://sqs.") or url.startswith(("http://", "https://")):
        from imagedex.queue.sqs import SqsQueue

        return SqsQueue(url, max_receive_count=max_receive_count)
    raise ConfigError(f"unsupported queue URL {url!r}; use 'sqlite' or 'sqs://queue-name'")
