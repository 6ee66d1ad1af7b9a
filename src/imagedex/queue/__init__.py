"""Work queues with SQS semantics: the embedded SQLite queue and SQS."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from imagedex.queue.base import DeadLetter, Message, QueueStats, WorkQueue
from imagedex.queue.sqlite import SqliteQueue
from imagedex.registry import Registry, UnknownNameError

__all__ = [
    "QUEUES",
    "DeadLetter",
    "Message",
    "QueueOpener",
    "QueueStats",
    "SqliteQueue",
    "WorkQueue",
    "open_queue",
]

#: Opens the queue a URL names: (url, data dir, max receive count) -> queue.
QueueOpener = Callable[[str, Path, int], WorkQueue]
_DEFAULT = ("", "sqlite")


def _unsupported(url: str) -> UnknownNameError:
    return UnknownNameError(
        f"unsupported queue URL {url!r}; use 'sqlite', 'sqs://queue-name' or "
        "'amqp://user:pass@host/vhost?queue=NAME'"
    )


def open_sqlite(url: str, data_dir: Path, max_receive_count: int) -> SqliteQueue:
    """`sqlite` (the data dir's queue file) or `sqlite:///path/queue.db`."""
    if url in _DEFAULT:
        return SqliteQueue(data_dir / "queue.sqlite3", max_receive_count=max_receive_count)
    if url.startswith("sqlite:///"):
        return SqliteQueue(Path(url.removeprefix("sqlite://")), max_receive_count=max_receive_count)
    raise _unsupported(url)


#: Queue openers by URL scheme (`sqlite` alone names the default queue). Packages add schemes
#: through the `imagedex.queues` entry point group.
QUEUES: Registry[QueueOpener] = Registry("queue URL scheme", "imagedex.queues")
QUEUES.register("sqlite", open_sqlite)
QUEUES.register("sqs", "imagedex.queue.sqs:open_named")
QUEUES.register("http", "imagedex.queue.sqs:open_url")
QUEUES.register("https", "imagedex.queue.sqs:open_url")
QUEUES.register("amqp", "imagedex.queue.rabbitmq:open_amqp")
QUEUES.register("amqps", "imagedex.queue.rabbitmq:open_amqp")


def open_queue(url: str, data_dir: Path, max_receive_count: int = 3) -> WorkQueue:
    """`sqlite` (default, in the data dir), `sqlite:///path/queue.db`, `sqs://name` or a URL."""
    scheme, separator, _ = url.partition("://")
    if not separator:
        scheme = "sqlite" if url in _DEFAULT else ""
    if scheme not in QUEUES:
        raise _unsupported(url)
    return QUEUES.resolve(scheme)(url, data_dir, max_receive_count)
