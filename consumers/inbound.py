"""`python -m consumers inbound`: events.inbound -> source event Viewed -> ack.queue -> ack.

The relay side of the review loop. Each batch is applied to relay_service.events in one
transaction, then every message of the batch (duplicates too, so a lost ack is re-sent) is
published to ack.queue with confirms, and only then are the deliveries acknowledged. A
decision for an event relay_service does not hold is dead-lettered with the reason.
"""

from __future__ import annotations

import logging
import time

from common import metrics, resources
from common.adapters import broker
from common.messages import BadMessage, DecisionMessage
from common.services import inbound
from common.settings import Settings
from consumers.runner import BatchConsumer, DatabaseHandler

log = logging.getLogger(__name__)


class InboundHandler(DatabaseHandler):
    """Applies batches of decisions to relay_service and acknowledges them on ack.queue."""

    queue = broker.INBOUND
    message = DecisionMessage

    def __init__(self, settings: Settings):
        self.publisher = broker.ConfirmingPublisher(settings, "inbound-acks", bases=[broker.ACK])
        super().__init__(settings, resources.relay_connection)

    def reset(self) -> None:
        """Called by the runner after a transient failure: fresh connections."""
        self.publisher.close()
        super().reset()

    def handle(self, decisions: list[DecisionMessage]) -> None:
        result = inbound.apply_decisions(self.conn, decisions)
        if result.unknown:
            raise BadMessage(f"unknown event {result.unknown[0]} in relay_service",
                             "unknown_reference")
        acks = [broker.Message(d.assignment_id, broker.encode(d.model_dump(mode="json",
                                                                          by_alias=True)))
                for d in decisions]
        confirmed = self.publisher.publish_batch(broker.ACK, acks)
        missing = {d.assignment_id for d in decisions} - confirmed
        if missing:
            raise broker.PublishError(f"{len(missing)} ack(s) not confirmed, e.g. "
                                      f"assignment {min(missing)}")
        _count_viewed(decisions, result.applied)
        log.info("applied %d decision(s), %d new; acks published", len(decisions),
                 len(result.applied))


def _count_viewed(decisions: list[DecisionMessage], applied: list[dict]) -> None:
    """Metrics of the decisions applied now (first time only): by outcome, and the time
    from the operator's decision to the source event Viewed."""
    by_event = {d.event_id: d for d in decisions}
    now = time.time()
    for row in applied:
        decision = by_event.get(row["event_id"])
        if decision is None:
            continue
        metrics.DECISIONS_VIEWED.labels(decision=decision.decision).inc()
        metrics.observe_since(metrics.DECISION_TO_VIEWED, now, [decision.decided_at])


def run(settings: Settings) -> None:
    """Decisions come one at a time, each the end of an operator's click: a batch starts
    with what the first read brought (no gathering window), which took 1 ms off every
    decision -> `Viewed`; a burst still becomes one batch per read."""
    BatchConsumer(settings, InboundHandler(settings), name="inbound",
                  prefetch=1000, batch_size=500, gather_seconds=0).run()
