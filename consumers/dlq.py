"""Dead letters, inspected and replayed: `python -m consumers dlq|replay QUEUE`.

QUEUE is a work queue's base name (`events.outbound`, `events.inbound`, `ack.queue`; a
`.dlq` suffix is accepted), under NAMESPACE. Two kinds of dead letters land in `<q>.dlq`:
those the runner published itself (headers `x-death-reason`, `x-death-kind`,
`x-original-queue`) and those the broker moved at the delivery limit (its own `x-death`).

Neither command loses a message: `dlq` reads at most the messages present when it starts and
gives them all back (nack with requeue); `replay` acknowledges a dead letter only after the
broker confirmed its copy on the work queue, and gives back the rest.
"""

from __future__ import annotations

import logging
import re
from collections import Counter as Tally
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pika
from pika.exceptions import AMQPError, ChannelClosedByBroker

from common.adapters import broker
from common.messages import BadMessage, DecisionMessage, OutboundEvent, parse
from common.metrics import DEAD_LETTERS_DROPPED
from common.settings import Settings

log = logging.getLogger(__name__)

# The model each work queue's consumer parses with (consumers/assignment, inbound, ack).
MODELS = {broker.OUTBOUND: OutboundEvent, broker.INBOUND: DecisionMessage,
          broker.ACK: DecisionMessage}
DEATH_HEADERS = ("x-death", "x-death-reason", "x-death-kind", "x-original-queue",
                 "x-delivery-count", "x-first-death-exchange", "x-first-death-queue",
                 "x-first-death-reason", "x-last-death-exchange", "x-last-death-queue",
                 "x-last-death-reason")
SAMPLE_CHARS = 160
BATCH = 200


class DeadLetterError(Exception):
    """A bad QUEUE name or a broker that does not answer: one line for the command line."""


def resolve(queue: str) -> str:
    """The base work queue named by `queue` (with or without `.dlq`), or DeadLetterError."""
    base = queue[: -len(".dlq")] if queue.endswith(".dlq") else queue
    if base not in MODELS:
        raise DeadLetterError(f"unknown queue {queue!r}: expected one of {', '.join(MODELS)}")
    return base


# -- reading one dead letter --------------------------------------------------------------

@dataclass
class DeadLetter:
    tag: int
    body: bytes
    properties: pika.BasicProperties

    @property
    def headers(self) -> dict:
        return self.properties.headers or {}

    def kind_and_reason(self) -> tuple[str, str]:
        """(kind, reason) from the runner's headers, else from the broker's `x-death`."""
        headers = self.headers
        if "x-death-reason" in headers:
            return str(headers.get("x-death-kind", "unknown")), str(headers["x-death-reason"])
        deaths = headers.get("x-death") or []
        if deaths:
            first = deaths[0]
            reason = _text(first.get("reason", "unknown"))
            return f"broker_{reason}", f"dead-lettered by the broker ({reason}) from " \
                                       f"{_text(first.get('queue', '?'))}"
        return "unknown", "no reason recorded"

    def died_at(self) -> datetime | None:
        """When it was dead-lettered, as well as the message tells."""
        deaths = self.headers.get("x-death") or []
        if deaths and isinstance(deaths[0].get("time"), datetime):
            moment = deaths[0]["time"]
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        if self.properties.timestamp:
            return datetime.fromtimestamp(self.properties.timestamp, UTC)
        # The runner names its dead letters `dlq-<tag>-<time_ns>`.
        found = re.fullmatch(r"dlq-\d+-(\d{16,20})", self.properties.message_id or "")
        return datetime.fromtimestamp(int(found.group(1)) / 1e9, UTC) if found else None

    def sample(self) -> str:
        """The body as one line, cut to SAMPLE_CHARS."""
        text = self.body.decode("utf-8", "replace").replace("\r", " ").replace("\n", " ")
        return text if len(text) <= SAMPLE_CHARS else text[: SAMPLE_CHARS - 3] + "..."


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


# -- the broker side ---------------------------------------------------------------------

def _open(settings: Settings, base: str, name: str):
    """A connection and channel, and the depth of `<base>.dlq` (namespaced)."""
    queue = broker.dlq_name(settings.name(base))
    try:
        connection = broker.connect(settings, name)
    except (AMQPError, OSError) as error:
        raise DeadLetterError(f"RabbitMQ at {settings.RABBITMQ_HOST}:{settings.RABBITMQ_PORT} "
                              f"does not answer ({type(error).__name__})") from None
    channel = connection.channel()
    try:
        depth = channel.queue_declare(queue, passive=True).method.message_count
    except ChannelClosedByBroker:
        connection.close()
        raise DeadLetterError(f"no dead-letter queue {queue} on the broker") from None
    return connection, channel, queue, depth


def _take(channel, queue: str, limit: int) -> list[DeadLetter]:
    """Up to `limit` messages, unacknowledged (so none is delivered twice meanwhile)."""
    taken = []
    while len(taken) < limit:
        method, properties, body = channel.basic_get(queue, auto_ack=False)
        if method is None:
            break
        taken.append(DeadLetter(method.delivery_tag, body, properties))
    return taken


def _give_back(channel, letters: list[DeadLetter]) -> None:
    for letter in letters:
        channel.basic_nack(letter.tag, requeue=True)


# -- dlq: the summary --------------------------------------------------------------------

@dataclass
class Summary:
    queue: str
    count: int
    read: int = 0
    reasons: Tally = field(default_factory=Tally)
    examples: dict = field(default_factory=dict)
    oldest: datetime | None = None
    sample: str | None = None

    def lines(self) -> list[str]:
        """What `python -m consumers dlq` prints."""
        out = [f"{self.queue}: {self.count} dead letter(s)"]
        if not self.count:
            return out
        if self.read < self.count:
            out.append(f"  (summary of the first {self.read})")
        out.append("  reasons:")
        for kind, number in self.reasons.most_common():
            out.append(f"    {number:>7}  {kind}: {self.examples[kind]}")
        out.append(f"  oldest: {self.oldest.isoformat() if self.oldest else 'unknown'}")
        out.append(f"  sample: {self.sample}")
        return out


def summarise(settings: Settings, queue: str, limit: int = 100_000) -> Summary:
    """Count, reasons grouped by kind, oldest, and a sample of `queue`'s dead letters.

    Reads at most the messages present at the start (consumers may add more meanwhile) and
    gives every one back; nothing is acknowledged. Called by `python -m consumers dlq`.
    """
    base = resolve(queue)
    connection, channel, name, depth = _open(settings, base, "dlq-summary")
    summary = Summary(name, depth)
    try:
        # Held unacknowledged until the end, so basic_get never returns one twice.
        letters = _take(channel, name, min(depth, limit))
        for letter in letters:
            _count(summary, letter)
        summary.read = len(letters)
        _give_back(channel, letters)
    finally:
        connection.close()
    return summary


def _count(summary: Summary, letter: DeadLetter) -> None:
    kind, reason = letter.kind_and_reason()
    summary.reasons[kind] += 1
    summary.examples.setdefault(kind, reason[:120])
    moment = letter.died_at()
    if moment and (summary.oldest is None or moment < summary.oldest):
        summary.oldest = moment
    if summary.sample is None:
        summary.sample = letter.sample()


# -- replay ------------------------------------------------------------------------------

@dataclass
class Replayed:
    queue: str
    moved: int = 0
    kept: int = 0


def replay(settings: Settings, queue: str) -> Replayed:
    """Move back to the work queue every dead letter that now parses and validates.

    Each is published with confirms and acknowledged only after its confirm; the rest stay
    in the `.dlq` (given back unchanged), so a second run moves nothing twice. Called by
    `python -m consumers replay`.
    """
    base = resolve(queue)
    connection, channel, name, depth = _open(settings, base, "dlq-replay")
    result, kept = Replayed(name), []
    try:
        with broker.ConfirmingPublisher(settings, "dlq-replay", bases=[base]) as publisher:
            while result.moved + len(kept) < depth:
                letters = _take(channel, name, min(BATCH, depth - result.moved - len(kept)))
                if not letters:
                    break
                good = [letter for letter in letters if _valid(base, letter, settings.MESSAGE_MAX_BYTES)]
                kept.extend(letter for letter in letters if letter not in good)
                confirmed = _publish(publisher, base, good)
                for letter in good:
                    if letter.tag in confirmed:
                        channel.basic_ack(letter.tag)
                        result.moved += 1
                    else:
                        kept.append(letter)
        result.kept = len(kept)
        _give_back(channel, kept)
    except broker.PublishError as error:
        raise DeadLetterError(f"replay to {settings.name(base)} failed: {error}") from None
    finally:
        if connection.is_open:
            connection.close()  # anything still unacknowledged returns to the .dlq
    log.info("replayed %d dead letter(s) from %s; %d left there", result.moved, name, result.kept)
    return result


def _valid(base: str, letter: DeadLetter, max_bytes: int) -> bool:
    try:
        parse(MODELS[base], letter.body, max_bytes)
    except BadMessage:
        return False
    return True


def _publish(publisher: broker.ConfirmingPublisher, base: str, letters: list) -> set:
    """Publish copies (death headers removed); return the tags the broker confirmed."""
    messages = [
        broker.Message(key=letter.tag, body=letter.body,
                       headers={k: v for k, v in letter.headers.items()
                                if k not in DEATH_HEADERS} | {"x-replayed": 1})
        for letter in letters
    ]
    return publisher.publish_batch(base, messages)


# -- overflow: called by the runner after it dead-letters --------------------------------

def note_depth(channel, settings: Settings, base: str, published: int) -> None:
    """After the runner dead-lettered `published` messages of `base`: if its `.dlq` is at
    its length limit, the policy dropped the oldest ones; say so and count them."""
    queue = broker.dlq_name(settings.name(base))
    depth = channel.queue_declare(queue, passive=True).method.message_count
    if depth >= settings.DLQ_MAX_LENGTH:
        DEAD_LETTERS_DROPPED.labels(queue=broker.dlq_name(base)).inc(published)
        log.warning("%s is full (%d, DLQ_MAX_LENGTH=%d): about %d oldest dead letter(s) "
                    "dropped", queue, depth, settings.DLQ_MAX_LENGTH, published)
