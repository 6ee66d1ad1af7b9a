"""Amazon SQS as the work queue: long polling, batches of up to 10, redrive to a DLQ.

SQS keeps no error text for dead letters, so when the worker gives up on a message it sends the
message to the dead-letter queue itself with the reason as a message attribute and deletes the
original. Messages of workers that died are moved by SQS's own redrive policy after
maxReceiveCount receives (reason: "exceeded maxReceiveCount").
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from imagedex.errors import ConfigError
from imagedex.queue.base import DeadLetter, Message, QueueStats

log = logging.getLogger("imagedex.queue.sqs")

ERROR_ATTRIBUTE = "imagedex-error"
MAX_BATCH = 10
MAX_WAIT_SECONDS = 20
MAX_VISIBILITY = 43_200
SCAN_VISIBILITY = 60  # dead letters hidden while `dlq retry` / `dlq purge` look through them


class SqsQueue:
    def __init__(self, name_or_url: str, max_receive_count: int = 3, client: Any = None) -> None:
        from imagedex.aws import client as aws_client

        self.client = client or aws_client("sqs")
        if name_or_url.startswith(("https://", "http://")):
            self.url = name_or_url
        else:
            try:
                self.url = self.client.get_queue_url(QueueName=name_or_url)["QueueUrl"]
            except self.client.exceptions.QueueDoesNotExist as exc:
                raise ConfigError(
                    f"SQS queue {name_or_url!r} does not exist; run `imagedex aws setup`"
                ) from exc
        self.max_receive_count = max_receive_count
        self.dlq_url: str | None = None
        self._read_redrive_policy()
        self._received: dict[str, tuple[str, str, int]] = {}  # receipt -> (id, body, count)
        self._lock = threading.Lock()

    def _read_redrive_policy(self) -> None:
        attrs = self.client.get_queue_attributes(
            QueueUrl=self.url, AttributeNames=["RedrivePolicy"]
        ).get("Attributes", {})
        policy = attrs.get("RedrivePolicy")
        if not policy:
            return
        data = json.loads(policy)
        self.max_receive_count = int(data.get("maxReceiveCount", self.max_receive_count))
        dlq_name = str(data["deadLetterTargetArn"]).rsplit(":", 1)[-1]
        self.dlq_url = self.client.get_queue_url(QueueName=dlq_name)["QueueUrl"]

    def _require_dlq(self) -> str:
        if self.dlq_url is None:
            raise ConfigError(
                "the SQS queue has no redrive policy / dead-letter queue; run `imagedex aws setup`"
            )
        return self.dlq_url

    def send(self, body: str, delay: float = 0.0) -> str:
        response = self.client.send_message(
            QueueUrl=self.url, MessageBody=body, DelaySeconds=int(min(900, max(0, delay)))
        )
        return str(response["MessageId"])

    def receive(
        self, max_messages: int = 10, visibility_timeout: float = 60.0, wait_seconds: float = 0.0
    ) -> list[Message]:
        response = self.client.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=max(1, min(MAX_BATCH, max_messages)),
            WaitTimeSeconds=int(min(MAX_WAIT_SECONDS, max(0, round(wait_seconds)))),
            VisibilityTimeout=int(min(MAX_VISIBILITY, max(1, round(visibility_timeout)))),
            AttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
        )
        messages = []
        with self._lock:
            for raw in response.get("Messages", []):
                attrs = raw.get("Attributes", {})
                receipt = raw["ReceiptHandle"]
                count = int(attrs.get("ApproximateReceiveCount", 1))
                self._received[receipt] = (raw["MessageId"], raw["Body"], count)
                messages.append(
                    Message(
                        id=raw["MessageId"],
                        body=raw["Body"],
                        receipt=receipt,
                        receive_count=count,
                        sent_at=int(attrs.get("SentTimestamp", 0)) / 1000,
                    )
                )
        return messages

    def _forget(self, receipt: str) -> tuple[str, str, int] | None:
        with self._lock:
            return self._received.pop(receipt, None)

    def delete(self, receipts: Sequence[str]) -> None:
        for start in range(0, len(receipts), MAX_BATCH):
            chunk = receipts[start : start + MAX_BATCH]
            entries = [{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(chunk)]
            response = self.client.delete_message_batch(QueueUrl=self.url, Entries=entries)
            for failed in response.get("Failed", []):
                log.warning("SQS refused to delete a message: %s", failed.get("Message"))
            for receipt in chunk:
                self._forget(receipt)

    def extend(self, receipt: str, visibility_timeout: float) -> None:
        self.client.change_message_visibility(
            QueueUrl=self.url,
            ReceiptHandle=receipt,
            VisibilityTimeout=int(min(MAX_VISIBILITY, visibility_timeout)),
        )

    def release(self, receipt: str, error: str, delay: float = 0.0) -> None:
        known = self._forget(receipt)
        if known is not None and known[2] >= self.max_receive_count:
            self._move_to_dlq(receipt, known, error)  # keep the reason SQS's redrive would lose
            return
        log.info("message released for retry in %.0fs: %s", delay, error)
        self.client.change_message_visibility(
            QueueUrl=self.url, ReceiptHandle=receipt, VisibilityTimeout=int(min(43_000, delay))
        )

    def dead_letter(self, receipt: str, error: str) -> None:
        known = self._forget(receipt)
        if known is None:
            raise ConfigError("cannot dead-letter a message this worker did not receive")
        self._move_to_dlq(receipt, known, error)

    def _move_to_dlq(self, receipt: str, known: tuple[str, str, int], error: str) -> None:
        message_id, body, _count = known
        self.client.send_message(
            QueueUrl=self._require_dlq(),
            MessageBody=body,
            MessageAttributes={
                ERROR_ATTRIBUTE: {"DataType": "String", "StringValue": error[:4000]},
                "imagedex-original-id": {"DataType": "String", "StringValue": message_id},
                "imagedex-failed-at": {"DataType": "Number", "StringValue": f"{time.time():.3f}"},
            },
        )
        self.client.delete_message(QueueUrl=self.url, ReceiptHandle=receipt)

    def _count(self, url: str) -> tuple[int, int]:
        attrs = self.client.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            int(attrs.get("ApproximateNumberOfMessages", 0)),
            int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
        )

    def stats(self) -> QueueStats:
        visible, in_flight = self._count(self.url)
        dead = sum(self._count(self.dlq_url)) if self.dlq_url else 0
        return QueueStats(visible=visible, in_flight=in_flight, dead=dead)

    def _peek_dlq(self, limit: int) -> list[dict[str, Any]]:
        """Read up to `limit` dead letters without consuming them."""
        seen: list[dict[str, Any]] = []

        def look(raw: dict[str, Any]) -> bool:
            seen.append(raw)
            return False

        self._scan_dlq(look, lambda: len(seen) >= limit)
        return seen

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        letters = []
        for raw in self._peek_dlq(limit):
            attrs = raw.get("MessageAttributes", {})
            error = attrs.get(ERROR_ATTRIBUTE, {}).get("StringValue") or (
                "exceeded the queue's maxReceiveCount (the worker failed or stopped each time)"
            )
            failed_at = attrs.get("imagedex-failed-at", {}).get("StringValue")
            letters.append(
                DeadLetter(
                    id=raw["MessageId"],
                    body=raw["Body"],
                    error=error,
                    receive_count=int(raw.get("Attributes", {}).get("ApproximateReceiveCount", 0)),
                    failed_at=float(failed_at) if failed_at else 0.0,
                )
            )
        return letters

    def redrive(self, ids: Sequence[str] | None = None) -> int:
        def send_back(raw: dict[str, Any]) -> None:
            self.client.send_message(QueueUrl=self.url, MessageBody=raw["Body"])

        return self._take_dead(ids, send_back)

    def purge(self, ids: Sequence[str] | None = None) -> int:
        # not PurgeQueue: it works asynchronously, once a minute, and cannot say how many
        return self._take_dead(ids, lambda _raw: None)

    def _take_dead(self, ids: Sequence[str] | None, act: Callable[[dict[str, Any]], None]) -> int:
        """`act` on dead letters (all, or those ids), then delete them; how many."""
        wanted = None if ids is None else set(ids)
        taken = 0

        def take(raw: dict[str, Any]) -> bool:
            nonlocal taken
            if wanted is not None:
                if raw["MessageId"] not in wanted:
                    return False
                wanted.discard(raw["MessageId"])
            act(raw)
            taken += 1
            return True

        self._scan_dlq(take, lambda: wanted is not None and not wanted)
        return taken

    def _scan_dlq(self, take: Callable[[dict[str, Any]], bool], enough: Callable[[], bool]) -> None:
        """Receive each dead letter once: deleted when `take(message)` says so, otherwise
        hidden while the scan goes on (SQS cannot page: a message received with no visibility
        timeout comes back at once, so a queue of more than ten could not be read through)
        and made visible again at the end. Stops when `enough()` or nothing new comes."""
        url = self._require_dlq()
        kept: dict[str, str] = {}  # message id -> its latest receipt handle
        try:
            while not enough():
                response = self.client.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=MAX_BATCH,
                    VisibilityTimeout=SCAN_VISIBILITY,
                    WaitTimeSeconds=1,  # long polling asks every SQS host: no false "empty"
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
                batch = response.get("Messages", [])
                fresh = [m for m in batch if m["MessageId"] not in kept]
                for raw in batch:
                    if raw["MessageId"] in kept:  # back after SCAN_VISIBILITY: a new receipt
                        kept[raw["MessageId"]] = raw["ReceiptHandle"]
                if not fresh:
                    return
                done: list[dict[str, str]] = []
                for raw in fresh:
                    if enough() or not take(raw):
                        kept[raw["MessageId"]] = raw["ReceiptHandle"]
                    else:
                        done.append({"Id": str(len(done)), "ReceiptHandle": raw["ReceiptHandle"]})
                if done:
                    self.client.delete_message_batch(QueueUrl=url, Entries=done)
        finally:
            for receipt in kept.values():
                try:
                    self.client.change_message_visibility(
                        QueueUrl=url, ReceiptHandle=receipt, VisibilityTimeout=0
                    )
                except Exception as exc:  # it reappears by itself after SCAN_VISIBILITY
                    log.info("could not make a dead letter visible again: %s", exc)

    def close(self) -> None:
        pass


def open_named(url: str, data_dir: Path, max_receive_count: int) -> SqsQueue:
    """The queue an `sqs://queue-name` URL names (looked up in the configured region)."""
    return SqsQueue(url.removeprefix("sqs://"), max_receive_count=max_receive_count)


def open_url(url: str, data_dir: Path, max_receive_count: int) -> SqsQueue:
    """The queue at an SQS queue URL (`https://sqs.<region>.amazonaws.com/<account>/<name>`)."""
    return SqsQueue(url, max_receive_count=max_receive_count)
