"""RabbitMQ as the work queue (`amqp://user:pass@host:5672/vhost?queue=NAME`), through pika.

Topology, declared when missing (durable; messages persistent; publishes confirmed):
  NAME            quorum queue: the work. `x-delivery-limit` with dead-lettering to NAME.dlq is
                  the broker's backstop for messages whose consumers keep dying.
  NAME.dlq        quorum queue: dead letters, each with its reason in a header.
  NAME.delay-Ns   classic queues with a message TTL of N seconds that dead-letter back to NAME:
                  a released message waits out its retry delay there (rounded up to a bucket).
With `exchange=EX` (and `routing_key=RK`, default `#`) NAME is also bound to EX, so bucket
notifications that MinIO or Ceph RGW publish to EX land in the work queue.

The lease is the channel, not a timer: an unacknowledged message stays with its consumer until
it is acknowledged or the consumer's connection closes, when the broker hands it out again. A
thread keeps the connection's AMQP heartbeats going while the worker computes, so long work keeps
its lease and `extend` has nothing to do. Messages are taken with basic.get, exactly as many as
the worker's batch asks for (the batch is the prefetch): none waits in a client buffer, where a
stop or crash would count an attempt against a message never worked on.

Receive counts survive retries: a release republishes the message with the attempts so far and
the error in headers (then acknowledges the original), and the quorum queue's own
`x-delivery-count` adds the deliveries whose consumer died.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from imagedex.errors import ConfigError
from imagedex.queue.base import DeadLetter, Message, QueueStats

log = logging.getLogger("imagedex.queue.rabbitmq")

ERROR_HEADER = "x-imagedex-error"
RECEIVES_HEADER = "x-imagedex-receives"
FAILED_AT_HEADER = "x-imagedex-failed-at"
#: retry delays are rounded up to one of these (seconds); one TTL queue each
DELAY_BUCKETS = (1, 5, 30, 120, 300)
#: how long a quorum queue imagedex has just created is left alone before anything is put in
#: it (see `_settle`)
NEW_QUEUE_SETTLE_S = 1.5
_OWN_PARAMS = {"queue", "exchange", "routing_key"}


class QueueUnavailableError(RuntimeError):
    """The broker cannot be reached or closed the connection; the worker backs off."""


@dataclass
class _Held:
    tag: int
    message_id: str
    body: bytes
    count: int


def _bucket(delay: float) -> int:
    return next((b for b in DELAY_BUCKETS if b >= delay), DELAY_BUCKETS[-1])


def _message_id(properties: Any, body: bytes) -> str:
    # messages from other publishers (a store's notifications) may carry no id
    return str(properties.message_id or hashlib.sha256(body).hexdigest()[:32])


class RabbitQueue:
    def __init__(self, url: str, max_receive_count: int = 3) -> None:
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        self.name = query.get("queue", "")
        if not self.name:
            raise ConfigError(
                f"the RabbitMQ URL {self._shown(url)!r} names no queue; add ?queue=NAME"
            )
        self.exchange = query.get("exchange", "")
        self.routing_key = query.get("routing_key", "#")
        rest = urlencode({k: v for k, v in query.items() if k not in _OWN_PARAMS})
        self._parameters = pika.URLParameters(urlunsplit(parts._replace(query=rest)))
        self._shown_url = self._shown(url)
        self.dlq = f"{self.name}.dlq"
        self.max_receive_count = max_receive_count
        self._lock = threading.RLock()
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._generation = 0
        self._held: dict[str, _Held] = {}
        self._closed = threading.Event()
        with self._lock:
            self._connect()
        self._pulse = threading.Thread(target=self._keep_alive, daemon=True, name="amqp-pulse")
        self._pulse.start()

    @staticmethod
    def _shown(url: str) -> str:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rsplit("@", 1)[-1]
        return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))

    # -- connection --------------------------------------------------------------------------

    def _connect(self) -> BlockingChannel:
        if self._channel is not None and self._channel.is_open:
            return self._channel
        self._drop()
        try:
            connection = pika.BlockingConnection(self._parameters)
        except pika.exceptions.ProbableAuthenticationError as exc:
            raise ConfigError(f"RabbitMQ at {self._shown_url} refused the credentials") from exc
        except pika.exceptions.AMQPError as exc:
            raise QueueUnavailableError(
                f"cannot connect to RabbitMQ at {self._shown_url}: {exc!r}"
            ) from exc
        channel = connection.channel()
        channel.confirm_delivery()
        self._connection, self._channel = connection, channel
        self._generation += 1
        try:
            self._declare(channel)
        except pika.exceptions.ChannelClosedByBroker as exc:
            self._drop()
            raise ConfigError(
                f"RabbitMQ refused the queue {self.name!r} ({exc.reply_text}); a queue of that "
                "name declared with other arguments must be deleted or another name chosen"
            ) from exc
        return channel

    def _declare(self, channel: BlockingChannel) -> None:
        created = not self._exists(self.name)
        channel.queue_declare(self.dlq, durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_declare(
            self.name,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                # the broker's backstop; imagedex itself dead-letters (with the reason) first
                "x-delivery-limit": self.max_receive_count,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": self.dlq,
            },
        )
        for seconds in DELAY_BUCKETS:
            channel.queue_declare(
                self._delay_queue(seconds),
                durable=True,
                arguments={
                    "x-message-ttl": seconds * 1000,
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": self.name,
                },
            )
        if created:
            self._settle()
        if self.exchange:
            channel.exchange_declare(self.exchange, "topic", durable=True, passive=False)
            channel.queue_bind(self.name, self.exchange, routing_key=self.routing_key)

    def _exists(self, queue: str) -> bool:
        """Whether `queue` is declared (asked on a channel of its own: a missing queue closes
        the channel that asked)."""
        assert self._connection is not None
        side = self._connection.channel()
        try:
            side.queue_declare(queue, passive=True)
            return True
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code != 404:
                raise
            return False
        finally:
            if side.is_open:
                side.close()

    @staticmethod
    def _settle() -> None:
        """Wait until a new quorum queue would survive a hard crash of the broker.

        RabbitMQ 3.10 (Ra 2.2) records which directory holds a new quorum queue's log in a
        dets file that reaches the disk only once it has been left alone for 0.5 s. A node
        killed (kill -9, power loss) before that starts the queue afresh with an empty log
        and no leader: the messages confirmed into it are unreachable and every get fails
        until an operator intervenes (docs/on-premises.md, "A hard crash right after a queue
        is created"). Nothing is published or bound to the queue before then, so no message
        can be lost that way; this costs 1.5 s once per queue, when it is created.
        """
        time.sleep(NEW_QUEUE_SETTLE_S)

    def _delay_queue(self, seconds: int) -> str:
        return f"{self.name}.delay-{seconds}s"

    def _drop(self) -> None:
        """Forget the connection: what it held unacknowledged the broker hands out again."""
        connection, self._connection, self._channel = self._connection, None, None
        self._held.clear()
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except Exception as exc:  # already gone
                log.debug("closing the RabbitMQ connection: %s", exc)

    def _call(self, work: Callable[[BlockingChannel], Any]) -> Any:
        with self._lock:
            channel = self._connect()
            try:
                return work(channel)
            except pika.exceptions.AMQPError as exc:
                self._drop()
                raise QueueUnavailableError(
                    f"RabbitMQ at {self._shown_url} failed: {exc!r}"
                ) from exc

    def _keep_alive(self) -> None:
        """Answer the broker's heartbeats while the worker is busy elsewhere."""
        while not self._closed.wait(1.0):
            with self._lock:
                if self._connection is None or not self._connection.is_open:
                    continue
                try:
                    self._connection.process_data_events(time_limit=0)
                except Exception as exc:
                    log.warning("lost the RabbitMQ connection (%s)", exc)
                    self._drop()

    # -- publishing --------------------------------------------------------------------------

    def _publish(
        self,
        channel: BlockingChannel,
        queue: str,
        body: bytes,
        message_id: str | None = None,
        headers: dict[str, Any] | None = None,
    ) -> str:
        message_id = message_id or str(uuid.uuid4())
        channel.basic_publish(
            "",
            queue,
            body,
            pika.BasicProperties(
                delivery_mode=pika.DeliveryMode.Persistent,
                message_id=message_id,
                timestamp=int(time.time()),
                content_type="application/json",
                headers=headers or {},
            ),
            mandatory=True,
        )
        return message_id

    def send(self, body: str, delay: float = 0.0) -> str:
        queue = self.name if delay <= 0 else self._delay_queue(_bucket(delay))
        return str(self._call(lambda ch: self._publish(ch, queue, body.encode())))

    # -- consuming ---------------------------------------------------------------------------

    def receive(
        self, max_messages: int = 10, visibility_timeout: float = 60.0, wait_seconds: float = 0.0
    ) -> list[Message]:
        deadline = time.monotonic() + wait_seconds
        while True:
            messages: list[Message] = self._call(lambda ch: self._get(ch, max(1, max_messages)))
            if messages or time.monotonic() >= deadline:
                return messages
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

    def _get(self, channel: BlockingChannel, wanted: int) -> list[Message]:
        received: list[Message] = []
        while len(received) < wanted:
            method, properties, body = channel.basic_get(self.name, auto_ack=False)
            if method is None:
                break
            headers = properties.headers or {}
            count = int(headers.get(RECEIVES_HEADER, 0)) + int(headers.get("x-delivery-count", 0))
            count += 1
            message_id = _message_id(properties, body)
            if count > self.max_receive_count:
                error = str(headers.get(ERROR_HEADER) or "") or (
                    f"not acknowledged after {count - 1} receives (the worker stopped or lost "
                    "its connection)"
                )
                self._to_dlq(channel, method.delivery_tag, message_id, body, error, count - 1)
                continue
            receipt = f"{self._generation}:{method.delivery_tag}"
            self._held[receipt] = _Held(method.delivery_tag, message_id, body, count)
            sent_at = float(properties.timestamp or time.time())
            received.append(Message(message_id, body.decode(), receipt, count, sent_at))
        return received

    def _to_dlq(
        self, channel: BlockingChannel, tag: int, message_id: str, body: bytes, error: str, n: int
    ) -> None:
        headers = {
            ERROR_HEADER: error[:4000],
            RECEIVES_HEADER: n,
            FAILED_AT_HEADER: f"{time.time():.3f}",
        }
        self._publish(channel, self.dlq, body, message_id, headers)
        channel.basic_ack(tag)

    def _take(self, receipt: str) -> _Held | None:
        """The message a receipt names, if this connection still holds it (a receipt from
        before a reconnect is stale: the broker has handed that message out again)."""
        return self._held.pop(receipt, None)

    def delete(self, receipts: Sequence[str]) -> None:
        def ack(channel: BlockingChannel) -> None:
            for receipt in receipts:
                held = self._take(receipt)
                if held is not None:
                    channel.basic_ack(held.tag)

        self._call(ack)

    def extend(self, receipt: str, visibility_timeout: float) -> None:
        """Nothing to do: the message stays ours while the connection lives (see the module)."""

    def release(self, receipt: str, error: str, delay: float = 0.0) -> None:
        def again(channel: BlockingChannel) -> None:
            held = self._take(receipt)
            if held is None:
                return
            if held.count >= self.max_receive_count:
                self._to_dlq(channel, held.tag, held.message_id, held.body, error, held.count)
                return
            queue = self.name if delay <= 0 else self._delay_queue(_bucket(delay))
            headers = {RECEIVES_HEADER: held.count, ERROR_HEADER: error[:4000]}
            self._publish(channel, queue, held.body, held.message_id, headers)
            channel.basic_ack(held.tag)

        self._call(again)

    def dead_letter(self, receipt: str, error: str) -> None:
        def give_up(channel: BlockingChannel) -> None:
            held = self._take(receipt)
            if held is not None:
                self._to_dlq(channel, held.tag, held.message_id, held.body, error, held.count)

        self._call(give_up)

    # -- depth and dead letters --------------------------------------------------------------

    def stats(self) -> QueueStats:
        def count(channel: BlockingChannel, queue: str) -> int:
            return int(channel.queue_declare(queue, passive=True).method.message_count)

        def read(channel: BlockingChannel) -> QueueStats:
            waiting = sum(count(channel, self._delay_queue(s)) for s in DELAY_BUCKETS)
            # unacknowledged messages of other consumers are invisible to AMQP clients: in
            # flight counts this process's and those waiting out a retry delay
            return QueueStats(
                visible=count(channel, self.name),
                in_flight=len(self._held) + waiting,
                dead=count(channel, self.dlq),
            )

        result: QueueStats = self._call(read)
        return result

    def _scan_dlq(self, take: Callable[[BlockingChannel, Any, Any, bytes], bool]) -> int:
        """Look at each dead letter once on a channel of its own: acknowledged when
        `take(...)` says so, handed back when the channel closes otherwise. How many taken."""

        def scan(channel: BlockingChannel) -> int:
            assert self._connection is not None
            side = self._connection.channel()
            side.confirm_delivery()
            taken = 0
            try:
                while True:
                    method, properties, body = side.basic_get(self.dlq, auto_ack=False)
                    if method is None:
                        return taken
                    if take(side, method, properties, body):
                        side.basic_ack(method.delivery_tag)
                        taken += 1
            finally:
                side.close()  # the dead letters not taken are ready again at once

        return int(self._call(scan))

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        letters: list[DeadLetter] = []

        def look(_channel: BlockingChannel, method: Any, properties: Any, body: bytes) -> bool:
            if len(letters) < limit:
                letters.append(self._letter(properties, body))
            return False

        if limit > 0:
            self._scan_dlq(look)
        return letters

    @staticmethod
    def _letter(properties: Any, body: bytes) -> DeadLetter:
        headers = properties.headers or {}
        error = headers.get(ERROR_HEADER)
        if not error:  # moved by the broker's delivery limit
            error = "exceeded the queue's x-delivery-limit (the worker failed or stopped each time)"
        return DeadLetter(
            id=_message_id(properties, body),
            body=body.decode(errors="replace"),
            error=str(error),
            receive_count=int(headers.get(RECEIVES_HEADER, 0)),
            failed_at=float(headers.get(FAILED_AT_HEADER, 0) or 0),
        )

    def _take_dead(self, ids: Sequence[str] | None, requeue: bool) -> int:
        wanted = None if ids is None else set(ids)

        def take(channel: BlockingChannel, method: Any, properties: Any, body: bytes) -> bool:
            message_id = _message_id(properties, body)
            if wanted is not None and message_id not in wanted:
                return False
            if requeue:  # back with a fresh receive count and no error
                self._publish(channel, self.name, body, message_id)
            return True

        return self._scan_dlq(take)

    def redrive(self, ids: Sequence[str] | None = None) -> int:
        return self._take_dead(ids, requeue=True)

    def purge(self, ids: Sequence[str] | None = None) -> int:
        return self._take_dead(ids, requeue=False)

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            self._drop()


def open_amqp(url: str, data_dir: Path, max_receive_count: int) -> RabbitQueue:
    """`amqp://user:pass@host:5672/vhost?queue=NAME[&exchange=EX&routing_key=RK]` (or amqps)."""
    return RabbitQueue(url, max_receive_count=max_receive_count)
