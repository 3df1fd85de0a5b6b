"""RabbitMQ: the queue declarations every process shares, and a publisher with confirms.

`declare_queues` is the only place queue arguments are written, so no two declarations ever
disagree. `ConfirmingPublisher` publishes persistent, mandatory messages and waits for the
broker's confirms of a whole batch at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import pika
from pika.adapters.blocking_connection import _IoloopTimerContext
from pika.exceptions import AMQPError

from common.adapters.amqp import rabbitmq_parameters
from common.settings import Settings

log = logging.getLogger(__name__)

OUTBOUND = "events.outbound"
INBOUND = "events.inbound"
ACK = "ack.queue"
QUEUES = (OUTBOUND, INBOUND, ACK)

PERSISTENT = 2
CONTENT_TYPE = "application/json"


def dlq_name(queue: str) -> str:
    return f"{queue}.dlq"


def queue_arguments(settings: Settings, queue: str) -> dict:
    """The arguments of a work queue: quorum, a delivery limit, dead letters to `<q>.dlq`."""
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": settings.RABBITMQ_DELIVERY_LIMIT,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": dlq_name(queue),
    }


def declare_queues(channel, settings: Settings, bases: Iterable[str] = QUEUES) -> None:
    """Declare each named queue (bases as in DESIGN.md, namespaced here) and its `.dlq`."""
    for base in bases:
        queue = settings.name(base)
        channel.queue_declare(
            dlq_name(queue), durable=True, arguments={"x-queue-type": "quorum"}
        )
        channel.queue_declare(queue, durable=True, arguments=queue_arguments(settings, queue))


def connection_parameters(settings: Settings, name: str, **overrides) -> list[pika.URLParameters]:
    """The parameters of every broker address, in order, each with our heartbeat, blocked-
    connection timeout and connection name, plus `overrides` (e.g. `socket_timeout=3`).

    One attempt per address per `connect`: the callers' own reconnect loops (runner, relay,
    publishers) do the waiting, and each new attempt walks the whole list again.
    """
    settings_for_all = {"heartbeat": settings.RABBITMQ_HEARTBEAT_SECONDS,
                        "blocked_connection_timeout": 60,
                        "connection_attempts": 1, "client_properties": {"connection_name": name},
                        **overrides}
    parameters = rabbitmq_parameters(settings)
    for params in parameters:
        for attribute, value in settings_for_all.items():
            if not isinstance(getattr(type(params), attribute, None), property):
                raise TypeError(f"pika connection parameters have no {attribute!r}")
            setattr(params, attribute, value)
    return parameters


def keep_alive_every(settings: Settings) -> float:
    """How often an owner lets pika run an idle connection (heartbeats): a third of the
    heartbeat, and at most every 10 s."""
    return min(10.0, settings.RABBITMQ_HEARTBEAT_SECONDS / 3)


class Keeper:
    """A daemon thread that lets pika answer the heartbeats of a connection between its
    owner's uses (publishers, the API's health probe and queue-depth reader), every
    `keep_alive_every`.

    Without it, a connection left unused for twice RABBITMQ_HEARTBEAT_SECONDS is closed by
    the broker, and its next use meets the reset (pika logs tracebacks) and reconnects. The
    thread takes turns with the connection's user through `lock`; `connection()` names the
    connection to keep (None: nothing to keep, the thread ends). On a failure it calls
    `lost()`, under the lock, and ends; the user's next use reconnects and calls `start`.
    """

    def __init__(self, settings: Settings, name: str, lock,  # a Lock or an RLock
                 connection: Callable[[], pika.BlockingConnection | None],
                 lost: Callable[[], None]):
        self.settings = settings
        self.name = name
        self._lock = lock
        self._connection = connection
        self._lost = lost
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Called by the user after it opened the connection: keep it from now on."""
        if self._thread is None or not self._thread.is_alive() or self._stopped.is_set():
            self._stopped = threading.Event()
            self._thread = threading.Thread(target=self._run, args=(self._stopped,),
                                            name=self.name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Called by the user before it closes the connection for good."""
        self._stopped.set()

    def _run(self, stopped: threading.Event) -> None:
        while not stopped.wait(keep_alive_every(self.settings)):
            with self._lock:
                connection = self._connection()
                if connection is None:
                    return
                try:
                    connection.process_data_events(time_limit=0)
                except Exception as error:  # noqa: BLE001 - pika raises many types
                    log.info("%s: broker connection lost while idle (%r); reopened on next "
                             "use", self.name, error)
                    self._lost()
                    return


def connect(settings: Settings, name: str, **overrides) -> pika.BlockingConnection:
    """A connection to the first broker address that answers (pika tries them in order);
    raises pika's AMQPConnectionError when none does."""
    parameters = connection_parameters(settings, name, **overrides)
    connection = pika.BlockingConnection(parameters)
    if len(parameters) > 1:  # which node, so a failover can be followed in the logs
        chosen = connection._impl.params
        log.info("%s connected to %s:%s", name, chosen.host, chosen.port)
    return connection


# One encoder for every message: json.dumps with arguments builds a new one per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)


def encode(payload: dict) -> bytes:
    return _ENCODER.encode(payload).encode()


class PublishError(Exception):
    """The broker did not confirm a publish (connection lost, nack or timeout)."""


@dataclass
class Message:
    """One message to publish. `key` identifies it in the confirmed set (e.g. an event id)."""

    key: object
    body: bytes
    headers: dict = field(default_factory=dict)


class ConfirmingPublisher:
    """Publishes batches with many confirms in flight.

    pika's BlockingChannel waits for each confirm before the next publish (about 1,400
    messages/s here); the channel underneath it can keep a whole batch in flight, so this
    class drives that channel directly and waits once per batch (over 10,000/s).
    One publisher per thread. Its `Keeper` answers the broker's heartbeats between
    batches, taking turns through the publisher's lock, so the connection lives whatever
    its owner does meanwhile: the relay's second worker, the inbound consumer's acks while
    a batch waits on PostgreSQL, a dead-letter publisher while its consumer is busy.
    """

    def __init__(self, settings: Settings, name: str, bases: Iterable[str] = QUEUES):
        self.settings = settings
        self.name = name
        self.bases = tuple(bases)
        self._connection: pika.BlockingConnection | None = None
        self._channel = None
        self._next_tag = 1
        self._pending: dict[int, object] = {}
        self._acked: set = set()
        self._failed: set = set()
        self._lock = threading.RLock()
        self._keeper = Keeper(settings, f"{name}-keeper", self._lock,
                              lambda: self._connection, self._forget)

    # -- connection ------------------------------------------------------------------

    def _open(self) -> None:
        self._connection = connect(self.settings, self.name)
        blocking = self._connection.channel()
        declare_queues(blocking, self.settings, self.bases)
        self._channel = blocking._impl  # the underlying pika.channel.Channel
        ready = []
        self._channel.add_on_return_callback(self._on_return)
        self._channel.confirm_delivery(self._on_confirm, callback=ready.append)
        self._wait_until(lambda: bool(ready), timeout=30.0)
        if not ready:
            raise PublishError(f"confirm mode not acknowledged on {self.name} within 30s")
        self._next_tag = 1
        self._keeper.start()

    def ensure_open(self) -> None:
        with self._lock:
            if self._connection is None or not self._connection.is_open:
                self.close()
                self._open()

    def close(self) -> None:
        with self._lock:
            self._keeper.stop()
            connection, self._connection, self._channel = self._connection, None, None
            if connection is not None and connection.is_open:
                with contextlib.suppress(AMQPError):
                    connection.close()

    def _forget(self) -> None:
        """The keeper found the connection lost (lock held): the next publish reopens."""
        connection, self._connection, self._channel = self._connection, None, None
        with contextlib.suppress(Exception):
            connection.close()

    def __enter__(self) -> ConfirmingPublisher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- callbacks from pika, while process_data_events runs ---------------------------

    def _on_confirm(self, frame) -> None:
        method = frame.method
        tags = (
            [t for t in self._pending if t <= method.delivery_tag]
            if method.multiple
            else [method.delivery_tag]
        )
        ok = isinstance(method, pika.spec.Basic.Ack)
        for tag in tags:
            key = self._pending.pop(tag, None)
            if key is not None and ok and key not in self._failed:
                self._acked.add(key)
            elif key is not None:
                self._failed.add(key)

    def _on_return(self, _channel, method, properties, _body) -> None:
        # With mandatory set, an unroutable message is returned, then acked: remember it
        # as failed so its ack does not count as delivery.
        log.error("message returned by broker: %s (%s)", method.reply_text, method.routing_key)
        self._failed.add(properties.message_id)

    # -- publishing ------------------------------------------------------------------

    def publish_batch(
        self, base: str, messages: Sequence[Message], timeout: float = 30.0
    ) -> set:
        """Publish to queue `base` (namespaced here); return the keys the broker confirmed.

        Raises PublishError if the connection fails; then nothing may be taken as delivered.
        """
        if not messages:
            return set()
        with self._lock:
            return self._publish_batch(base, messages, timeout)

    def _publish_batch(self, base: str, messages: Sequence[Message], timeout: float) -> set:
        self._acked, self._failed, self._pending = set(), set(), {}
        routing_key = self.settings.name(base)
        try:
            self.ensure_open()
            frames = _Frames.of(self._channel, routing_key)
            out, by_str = [], {}
            for message in messages:
                message_id = str(message.key)
                by_str[message_id] = message.key
                self._pending[self._next_tag] = message_id
                self._next_tag += 1
                marshaled = (frames.marshal(message_id, message.body)
                             if frames and not message.headers else None)
                if marshaled is not None:
                    out.append(marshaled)
                    continue
                if out:  # keep the order of the frames on the wire
                    frames.send(b"".join(out))
                    out = []
                properties = pika.BasicProperties(
                    content_type=CONTENT_TYPE,
                    delivery_mode=PERSISTENT,
                    message_id=message_id,
                    headers=message.headers or None,
                )
                self._channel.basic_publish(
                    "", routing_key, message.body, properties, mandatory=True
                )
            if out:
                frames.send(b"".join(out))
            self._coalesce_output()
            self._wait_until(lambda: not self._pending, timeout)
        except (AMQPError, OSError) as error:
            self.close()
            raise PublishError(f"publish to {routing_key} failed: {error!r}") from error
        if self._pending:
            self.close()
            raise PublishError(f"{len(self._pending)} confirms missing after {timeout}s")
        return {by_str[k] for k in self._acked if k in by_str}

    def _wait_until(self, done, timeout: float) -> None:
        """Process broker frames until `done()` or `timeout`; returns the moment it is done.

        `process_data_events(time_limit=t)` returns early only for BlockingChannel
        callbacks, not for the raw channel's confirms this class listens to, so each call
        used to sit out its whole slice: a one-message publish cost 50 ms instead of
        0.4 ms. pika's own wait loop takes `done` as a waiter and checks it after every
        frame (reaches into pika 1.4.4, as `_coalesce_output` does).
        """
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            remaining = min(deadline - time.monotonic(), 1.0)
            with _IoloopTimerContext(max(remaining, 0.0), self._connection._impl) as timer:
                self._connection._flush_output(timer.is_ready, done)

    def _coalesce_output(self) -> None:
        """Join the frames this batch buffered, so they leave in a few send() calls.

        pika (pinned at 1.4.4) sends each buffered frame with its own send(): three per
        message, most of a relay's CPU here (a 100,000-event drain went from about 9,400 to
        14,000 events/s). Reaches into pika's transport on purpose; does nothing if absent.
        """
        transport = getattr(self._connection._impl, "_transport", None)
        buffers = getattr(transport, "_tx_buffers", None)
        if buffers is not None and len(buffers) > 1:
            joined = b"".join(buffers)
            buffers.clear()
            buffers.append(joined)

    def publish(self, base: str, payload: dict, key: object, headers: dict | None = None) -> None:
        """Publish one JSON message and wait for its confirm; raise PublishError if refused."""
        confirmed = self.publish_batch(base, [Message(key, encode(payload), headers or {})])
        if key not in confirmed:
            raise PublishError(f"broker refused message {key} to {self.settings.name(base)}")


class _Frames:
    """The wire frames of a persistent, mandatory JSON publish without headers, written
    here rather than by pika: pika builds and marshals three frame objects per message
    (about 10 of the relay's 23 µs per event). Byte for byte what pika 1.4.4 writes for
    the same publish; `of` checks that against pika itself once per channel and returns
    None (pika's own path) if it ever differs, or when the channel is closed or pika's
    internals are not where they were. Reaches into pika on purpose, as
    `_coalesce_output` does.
    """

    _checked: dict = {}  # (pika version, channel number, frame_max) -> it matched

    def __init__(self, connection, channel_number: int, routing_key: str):
        self._connection = connection
        self._channel_number = channel_number
        self._body_max = connection._body_max_length
        key = routing_key.encode()
        if len(key) > 255:
            raise ValueError("routing key over 255 bytes")
        # Basic.Publish: class 60, method 40, ticket 0, exchange "", routing key, mandatory.
        payload = struct.pack(">HHHB", 60, 40, 0, 0) + bytes([len(key)]) + key + b"\x01"
        self._method = self._frame(1, payload)
        content_type = CONTENT_TYPE.encode()
        # Header frame properties: content_type (bit 15), delivery_mode (12), message_id (7).
        self._properties = (bytes([len(content_type)]) + content_type
                            + bytes([PERSISTENT]))

    def _frame(self, kind: int, payload: bytes) -> bytes:
        return struct.pack(">BHI", kind, self._channel_number, len(payload)) + payload + b"\xce"

    def marshal(self, message_id: str, body: bytes) -> bytes | None:
        """The three frames of one publish, or None when pika must write it (a body that
        needs several frames, an id too long for a short string)."""
        mid = message_id.encode()
        if len(mid) > 255 or len(body) > self._body_max or not body:
            return None
        header = (struct.pack(">HHQH", 60, 0, len(body), 0x9080) + self._properties
                  + bytes([len(mid)]) + mid)
        return b"".join((self._method, self._frame(2, header), self._frame(3, body)))

    def send(self, data: bytes) -> None:
        self._connection._output_marshaled_frames([data])

    @classmethod
    def of(cls, channel, routing_key: str) -> _Frames | None:
        try:
            connection = channel.connection
            if not channel.is_open:
                return None  # pika's path raises the error a closed channel deserves
            frames = cls(connection, channel.channel_number, routing_key)
            check = (pika.__version__, channel.channel_number, frames._body_max)
            if check not in cls._checked:
                cls._checked[check] = frames._matches_pika(routing_key)
            return frames if cls._checked[check] else None
        except Exception:  # noqa: BLE001 - pika's own path is always there
            return None

    def _matches_pika(self, routing_key: str) -> bool:
        from pika import frame, spec
        body, message_id = b'{"a":1}', "00000000-0000-4000-8000-000000000000"
        properties = pika.BasicProperties(content_type=CONTENT_TYPE,
                                          delivery_mode=PERSISTENT, message_id=message_id)
        method = spec.Basic.Publish(exchange="", routing_key=routing_key, mandatory=True)
        expected = b"".join((frame.Method(self._channel_number, method).marshal(),
                             frame.Header(self._channel_number, len(body), properties).marshal(),
                             frame.Body(self._channel_number, body).marshal()))
        same = self.marshal(message_id, body) == expected
        if not same:
            log.warning("publish frames differ from pika's; using pika's path")
        return same
