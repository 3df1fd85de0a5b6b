"""The loop every queue consumer shares: batches, acks after commit, dead letters, reconnects.

A handler parses one body (raising BadMessage for what can never be processed) and handles
a batch of parsed items in one transaction. The runner decides each message's fate by the
kind of error, as gmr/rejected does, and nothing a message holds can end the process:
- BadMessage (any body `parse` refuses, over MESSAGE_MAX_BYTES too), or a data error from
  PostgreSQL: published to `<queue>.dlq` with the reason in the `x-death-reason` header and
  its kind in `x-death-kind`, then acknowledged;
- a transient failure (a server unreachable): the batch is retried with capped back-off and
  never acknowledged before its commit;
- anything else: the batch is retried message by message. A message that still fails while
  batch-mates succeed is one bad message: dead-lettered at once (`handler_failed`). One that
  fails with nothing succeeding beside it may be a passing fault: it is requeued and counted,
  and the consumer backs off; on its last delivery before the quorum queue's delivery limit it
  is dead-lettered with the reason, and the broker's limit stays the last net.
"""
from __future__ import annotations

import contextlib
import logging
import signal
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import psycopg
import redis
from pika.exceptions import AMQPError

from common import heartbeat, metrics
from common.adapters import broker, deliveries
from common.messages import BadMessage, parse
from common.settings import Settings
from consumers import dlq
from consumers.fate import dead_letter_headers, safe_headers, summary, verdict

log = logging.getLogger(__name__)

TRANSIENT = (psycopg.OperationalError, redis.ConnectionError, redis.TimeoutError,
             broker.PublishError, OSError)
MAX_BACKOFF = 30.0
# The longest this thread blocks in pika with nothing to do: deliveries and the worker's
# wake-up end the wait at once; this bounds how late SIGTERM and the idle work are seen.
WAIT_SECONDS = 0.25
# A batch gathers deliveries for at most this long once the worker is free. The relay
# publishes a burst at once but the queue hands it over in several reads: starting on the
# first read split a burst of 25 into batches of 3 and 22, and the 22 waited a whole batch
# (500/s: p50 17-18 ms instead of 9-12). Waiting instead for 1 ms *of silence* never ended
# under a steady stream, and the worker sat idle while a batch of 1,000 filled (backlog:
# 3,700-5,100 events/s instead of 5,000-5,600).
GATHER_SECONDS = 0.001


class DatabaseHandler:
    """Base of the handlers: one autocommit connection, reopened by `reset`; messages
    parsed strictly into `message` (a pydantic model of common/messages.py).

    A handler adds `handle(items)`: one batch, in one transaction; it raises BadMessage
    for what can never be processed, and lets transient errors propagate."""

    queue: str
    message: type

    def __init__(self, settings: Settings, connect):
        self.settings = settings
        self._connect = connect
        self.conn: psycopg.Connection | None = None
        self.reset()

    def reset(self) -> None:
        """Called by the runner after a transient failure: a fresh database connection."""
        if self.conn is not None:
            self.conn.close()
        self.conn = self._connect(self.settings, autocommit=True)

    def parse(self, body: bytes):
        return parse(self.message, body, self.settings.MESSAGE_MAX_BYTES)

    def on_dead_letter(self, delivery: Delivery, reason: str, kind: str) -> None:
        """Called by the runner before it dead-letters `delivery`; nothing unless a handler
        records it (the assignment handler does, so the relay stops re-dispatching)."""

    def idle(self) -> None:
        """Nothing periodic unless a handler says otherwise."""


@dataclass
class Delivery:
    tag: int
    body: bytes
    headers: dict


class Stop(Exception):
    pass


@dataclass
class InFlight:
    """A batch handed to a worker: its future, deliveries, parsed and refused messages, and
    the handler (with its own database connection) that runs it."""
    future: Future
    batch: list
    good: list
    bad: dict
    handler: DatabaseHandler


class BatchConsumer:
    """Consumes one queue in batches for a handler until SIGTERM/SIGINT."""

    def __init__(self, settings: Settings, handler: DatabaseHandler, name: str,
                 prefetch: int = 1000, batch_size: int = 500, idle_every: float = 0,
                 more_handlers: Sequence[DatabaseHandler] = (),
                 gather_seconds: float = GATHER_SECONDS):
        """`more_handlers` (each with its own connection) let that many more batches be in
        flight at once, each in its own worker thread: one batch's database work overlaps
        the next one's. Batches are still acknowledged in delivery order. `gather_seconds`:
        how long a batch may gather (GATHER_SECONDS); 0 starts one with what the first
        read brought, for a queue whose messages come one at a time and wait on each."""
        self.settings = settings
        self.handler = handler
        self.handlers = [handler, *more_handlers]
        self.name = name
        self.prefetch = prefetch
        self.batch_size = batch_size
        self.idle_every = idle_every
        self.queue = settings.name(handler.queue)
        self.dlq_base = broker.dlq_name(handler.queue)
        self.buffer: list[Delivery] = []
        self.stopping = False
        self.stats = {"handled": 0, "dead_lettered": 0, "requeued": 0, "idle_failures": 0}
        self._unknown_in_a_row = 0
        self._delivery_limit = settings.RABBITMQ_DELIVERY_LIMIT
        self._next_idle = time.monotonic() + idle_every
        self._worker = ThreadPoolExecutor(max_workers=len(self.handlers),
                                          thread_name_prefix=f"{name}-batch")
        self._inflight: deque[InFlight] = deque()
        self._gathering_since: float | None = None
        self._gather_seconds = gather_seconds
        self._dlq = broker.ConfirmingPublisher(settings, f"{name}-dlq", bases=[handler.queue])

    # -- lifecycle -----------------------------------------------------------------------

    def run(self) -> None:
        """Consume until stopped, reconnecting to RabbitMQ with capped back-off."""
        signal.signal(signal.SIGTERM, self._on_signal)
        backoff = 1.0
        while not self.stopping:
            try:
                self._consume()
                backoff = 1.0
            except Stop:
                break
            except (AMQPError, OSError) as error:
                log.warning("%s: broker connection lost (%r); retrying in %.0fs",
                            self.name, error, backoff)
                self.buffer.clear()  # unacked: the broker redelivers them
                self._gathering_since = None
                self._sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
        self._dlq.close()
        self._worker.shutdown()
        log.info("%s stopped: %s", self.name, self.stats)

    def _on_signal(self, *_):
        """SIGTERM handler: finish the current batch, then leave."""
        self.stopping = True

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < end:
            time.sleep(min(0.2, seconds))

    def _consume(self) -> None:
        """One broker connection's life: declare, consume, hand batches to the worker.

        The worker thread handles one batch (the database and Redis work) while this thread
        keeps receiving the next from the broker; pika's objects are only ever touched
        here. The handler is never used by two threads at once: the periodic work runs only
        while no batch is in flight.

        No polling while a batch is in flight: this thread blocks in pika until a delivery
        arrives or the worker, done with the batch, wakes it (`add_callback_threadsafe`),
        or WAIT_SECONDS pass (heartbeats, SIGTERM, idle work). A batch starts when a read
        brings nothing new, when it is full, or gather_seconds after it began gathering.
        """
        connection = broker.connect(self.settings, self.name)
        try:
            channel = connection.channel()
            broker.declare_queues(channel, self.settings, [self.handler.queue])
            channel.basic_qos(prefetch_count=self.prefetch)
            tag = channel.basic_consume(self.queue, self._on_message)
            deliveries.install(connection, channel, tag, self._on_delivery)
            log.info("%s consuming %s", self.name, self.queue)
            while not self.stopping:
                heartbeat.tick()
                while self._inflight and self._inflight[0].future.done():
                    self._finish(channel)  # in delivery order: see _settle
                if len(self._inflight) < len(self.handlers):
                    if self.buffer and self._gathered(connection):
                        self._start(connection)
                        continue
                    if not self._inflight:
                        self._maybe_idle()
                    if self.buffer:
                        continue  # more arrived: read again before waiting
                connection.process_data_events(time_limit=WAIT_SECONDS)
            while self._inflight:
                self._inflight[0].future.exception()  # wait: its commit decides its ack
                self._finish(channel)
        finally:
            while self._inflight:
                # The connection failed under an in-flight batch: let it finish (it cannot
                # be acked now; the broker redelivers it and dedup makes that harmless).
                self._inflight.popleft().future.exception()
            if connection.is_open:
                with contextlib.suppress(AMQPError):
                    connection.close()

    def _gathered(self, connection) -> bool:
        """Read what arrives, for at most gather_seconds since this batch began gathering
        (returning early on a delivery). True when the buffer is ready to become a batch:
        nothing more came in, a batch's worth is there, or the window has passed."""
        now = time.monotonic()
        if self._gathering_since is None:
            self._gathering_since = now
        left = self._gathering_since + self._gather_seconds - now
        if left <= 0:
            return True
        before = len(self.buffer)
        connection.process_data_events(time_limit=left)
        return len(self.buffer) == before or len(self.buffer) >= self.batch_size

    def _on_message(self, _channel, method, properties, body) -> None:
        """pika calls this for each delivery it decodes while process_data_events runs."""
        headers = properties.headers if isinstance(properties.headers, dict) else {}
        self._on_delivery(method.delivery_tag, body, headers)

    def _on_delivery(self, tag: int, body: bytes, headers: dict) -> None:
        """Each delivery into the buffer: from `_on_message`, or straight from the reader
        of common/adapters/deliveries.py (pika dispatches both in the order they came)."""
        self.buffer.append(Delivery(tag, body, headers))

    def _maybe_idle(self) -> None:
        """The handler's periodic work. Transient failures are retried like a batch; any
        other failure is logged and counted, and the next period tries again: a sweep
        that fails must not stop the consumer's real work."""
        if self.idle_every and time.monotonic() >= self._next_idle:
            self._next_idle = time.monotonic() + self.idle_every
            try:
                self._with_retry(self.handler.idle)
            except Stop:
                raise
            except Exception:  # noqa: BLE001 - see the docstring
                self.stats["idle_failures"] += 1
                log.exception("%s: periodic work failed; retried next period", self.name)

    # -- one batch -----------------------------------------------------------------------

    def _start(self, connection) -> None:
        """Parse the next batch here, and hand the good messages to the worker, which wakes
        this thread's pika loop when it is done."""
        self._gathering_since = None
        batch, self.buffer = self.buffer[: self.batch_size], self.buffer[self.batch_size :]
        good, bad = [], {}
        for delivery in batch:
            try:
                good.append((delivery, self.handler.parse(delivery.body)))
            except BadMessage as error:
                bad[delivery.tag] = (delivery, error.reason, error.kind)
            except Exception as error:  # noqa: BLE001 - a parser bug must not end the process
                bad[delivery.tag] = (delivery, summary("parser failed", error), "unreadable")
        busy = {entry.handler for entry in self._inflight}
        handler = next(h for h in self.handlers if h not in busy)
        future = self._worker.submit(self._with_retry, lambda: self._handle(good, bad, handler),
                                     handler)
        future.add_done_callback(lambda _future: _wake(connection))
        self._inflight.append(InFlight(future, batch, good, bad, handler))

    def _finish(self, channel) -> None:
        """The worker is done with the oldest batch: dead-letter the bad ones, then ack them
        all."""
        entry = self._inflight.popleft()
        batch, good, bad = entry.batch, entry.good, entry.bad
        try:
            requeue = entry.future.result()
        except Stop:
            raise
        except Exception:  # noqa: BLE001 - a runner bug: requeue the batch, keep running
            log.exception("%s: batch of %d failed unexpectedly; requeued", self.name, len(good))
            requeue = [delivery for delivery, _ in good]
        for delivery, reason, kind in bad.values():
            self._dead_letter(delivery, reason, kind, entry.handler)
        if bad:
            dlq.note_depth(channel, self.settings, self.handler.queue, len(bad))
        self._settle(channel, batch, {d.tag for d in requeue})
        self.stats["handled"] += len(good) - len(requeue)

    @staticmethod
    def _settle(channel, batch: list[Delivery], requeue: set[int]) -> None:
        """Requeue what must be retried, then ack the rest with one `multiple` ack.

        Deliveries arrive in tag order, a batch is a prefix of what is not yet in flight, and
        batches are finished in the order they started, so every tag up to the batch's
        highest (not requeued) is in this batch: one frame instead of hundreds.
        """
        for tag in sorted(requeue):
            channel.basic_nack(tag, requeue=True)
        done = [d.tag for d in batch if d.tag not in requeue]
        if done:
            channel.basic_ack(max(done), multiple=True)

    def _handle(self, good: list, bad: dict, handler: DatabaseHandler | None = None
                ) -> list[Delivery]:
        """Whole batch first; on a non-transient error, one by one. Returns what to requeue,
        after a back-off when something had to be requeued. Runs in a worker thread."""
        handler = handler or self.handler
        if not good:
            return []
        succeeded = 0
        try:
            handler.handle([item for _, item in good])
            self._unknown_in_a_row = 0
            return []
        except TRANSIENT:
            raise
        except Exception as error:  # noqa: BLE001 - isolate the message that causes it
            if len(good) > 1:
                log.warning("%s: batch of %d failed (%s); retrying one by one",
                            self.name, len(good), summary("", error))
                failed, succeeded = self._one_by_one(good, handler)
            else:
                failed = [(good[0][0], error)]
        requeue = self._judge(failed, bad, alone=len(good) == 1, succeeded=succeeded)
        if requeue:
            self._back_off_after_failures()
        return requeue

    @staticmethod
    def _one_by_one(good: list, handler: DatabaseHandler
                    ) -> tuple[list[tuple[Delivery, Exception]], int]:
        """Handle each message alone; returns the failures with their errors, and how many
        succeeded (evidence that the failures are the messages' own)."""
        failed, succeeded = [], 0
        for delivery, item in good:
            try:
                handler.handle([item])
                succeeded += 1
            except TRANSIENT:
                raise
            except Exception as error:  # noqa: BLE001 - judged below
                failed.append((delivery, error))
        return failed, succeeded

    def _judge(self, failed: list, bad: dict, alone: bool, succeeded: int) -> list[Delivery]:
        """Each failure's fate: dead letter (bad for sure) or requeue (maybe a passing fault)."""
        proven = not alone and succeeded > 0
        requeue = []
        for delivery, error in failed:
            dead = verdict(error, proven, self._last_delivery(delivery), self._delivery_limit)
            if dead:
                bad[delivery.tag] = (delivery, *dead)
            else:
                requeue.append(delivery)
                self.stats["requeued"] += 1
                log.error("%s: message %s failed (%s); requeued", self.name, delivery.tag,
                          summary("", error), exc_info=error)
        if not requeue:
            self._unknown_in_a_row = 0
        return requeue

    def _last_delivery(self, delivery: Delivery) -> bool:
        """True on the last delivery before the quorum queue's delivery limit."""
        count = delivery.headers.get("x-delivery-count")
        return isinstance(count, int) and count >= self._delivery_limit

    def _back_off_after_failures(self) -> None:
        """Unexplained failures with nothing succeeding: wait longer each time, not exit."""
        self._unknown_in_a_row += 1
        delay = min(0.5 * 2 ** min(self._unknown_in_a_row - 1, 10), MAX_BACKOFF)
        log.warning("%s: %d unexplained failure(s) in a row; backing off %.1fs",
                    self.name, self._unknown_in_a_row, delay)
        self._sleep(delay)

    def _with_retry(self, work, handler: DatabaseHandler | None = None):
        """Run `work`, retrying transient failures with capped back-off until it succeeds;
        `handler` (default the first) is the one reconnected after a failure."""
        backoff = 0.5
        while True:
            try:
                return work()
            except TRANSIENT as error:
                if self.stopping:
                    raise Stop() from error
                log.warning("%s: transient failure (%r); retrying in %.1fs",
                            self.name, error, backoff)
                self._sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                self._reset_handler(handler or self.handler)

    @staticmethod
    def _reset_handler(handler: DatabaseHandler) -> None:
        try:
            handler.reset()
        except TRANSIENT as error:
            log.warning("reconnect failed: %r", error)

    def _dead_letter(self, delivery: Delivery, reason: str, kind: str,
                     handler: DatabaseHandler | None = None) -> None:
        """Publish the original body to `<queue>.dlq` with the reason (and its kind, a
        short category), before the ack. The handler (of its batch) hears of it first."""
        log.error("%s: dead-lettering delivery %s (%s): %s", self.name, delivery.tag, kind, reason)
        self._tell_handler(delivery, reason, kind, handler or self.handler)
        ours = dead_letter_headers(reason, kind, self.queue)
        try:
            self._publish_dead_letter(delivery, {**safe_headers(delivery.headers), **ours})
        except Stop:
            raise
        except Exception as error:  # noqa: BLE001 - e.g. a header pika cannot re-encode
            log.warning("%s: dead letter %s refused with its headers (%s); sent without them",
                        self.name, delivery.tag, summary("", error))
            self._publish_dead_letter(delivery, ours)
        self.stats["dead_lettered"] += 1
        metrics.DEAD_LETTERED.labels(queue=self.handler.queue, reason=kind).inc()

    def _tell_handler(self, delivery: Delivery, reason: str, kind: str,
                      handler: DatabaseHandler) -> None:
        try:
            self._with_retry(lambda: handler.on_dead_letter(delivery, reason, kind), handler)
        except Stop:
            raise
        except Exception:  # noqa: BLE001 - the dead letter itself matters more
            log.exception("%s: recording dead letter %s failed", self.name, delivery.tag)

    def _publish_dead_letter(self, delivery: Delivery, headers: dict) -> None:
        message = broker.Message(key=f"dlq-{delivery.tag}-{time.time_ns()}",
                                 body=delivery.body, headers=headers)

        def publish():
            if message.key not in self._dlq.publish_batch(self.dlq_base, [message]):
                raise broker.PublishError(f"dead letter not confirmed on {self.dlq_base}")

        self._with_retry(publish)



def _wake(connection) -> None:
    """Called in the worker thread when a batch is done: end the consuming thread's wait in
    pika (the only thread-safe call of a BlockingConnection). A closed connection needs no
    waking: its loop is already ending."""
    with contextlib.suppress(AMQPError):
        connection.add_callback_threadsafe(_nothing)


def _nothing() -> None:
    pass
