"""The WorkQueue protocol: at-least-once delivery, visibility timeouts, a dead-letter queue."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Message:
    id: str
    body: str
    receipt: str
    receive_count: int
    sent_at: float


@dataclass(frozen=True)
class DeadLetter:
    id: str
    body: str
    error: str
    receive_count: int
    failed_at: float


@dataclass(frozen=True)
class QueueStats:
    visible: int
    in_flight: int
    dead: int


class WorkQueue(Protocol):
    """SQS-like: received messages are hidden for a visibility timeout and come back unless deleted.

    A message received more than `max_receive_count` times goes to the dead-letter queue with the
    last error recorded for it.
    """

    max_receive_count: int

    def send(self, body: str, delay: float = 0.0) -> str: ...

    def receive(
        self, max_messages: int = 10, visibility_timeout: float = 60.0, wait_seconds: float = 0.0
    ) -> list[Message]: ...

    def delete(self, receipts: Sequence[str]) -> None:
        """Acknowledge processed messages (by receipt handle)."""
        ...

    def extend(self, receipt: str, visibility_timeout: float) -> None:
        """Keep a message hidden longer while it is still being worked on."""
        ...

    def release(self, receipt: str, error: str, delay: float = 0.0) -> None:
        """A failed attempt: remember why and make it visible again after `delay` seconds."""
        ...

    def dead_letter(self, receipt: str, error: str) -> None:
        """Give up on a message now (it can never succeed) and keep it with its reason."""
        ...

    def stats(self) -> QueueStats: ...

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]: ...

    def redrive(self, ids: Sequence[str] | None = None) -> int:
        """Move dead letters (all, or those ids) back to the queue with a fresh receive count."""
        ...

    def purge(self, ids: Sequence[str] | None = None) -> int:
        """Drop dead letters for good (all, or those ids); how many were dropped. Ids that are
        not dead letters (already retried or purged) are skipped."""
        ...

    def close(self) -> None: ...
