"""`python -m consumers assignment`: events.outbound -> stored, waiting, routed -> ack.

Any number of copies may run at once: SKIP LOCKED draws and the guarded load rows keep them
from taking the same event twice or passing the cap. Every BACKFILL_SWEEP_SECONDS each copy
also routes whatever waits (work missed by a trigger, events due for overflow).
"""

from __future__ import annotations

import logging

from common import resources
from common.adapters import broker, rejected_events
from common.adapters.presence import Presence
from common.messages import OutboundEvent, event_id_of
from common.services import assignment
from common.services.reconcile import reconcile_counters
from common.settings import Settings
from consumers.runner import BatchConsumer, DatabaseHandler, Delivery

log = logging.getLogger(__name__)

# Batches in flight at once in one consumer, each in its own worker thread with its own
# PostgreSQL connection: the next batch's store and routing run while the previous one
# waits on PostgreSQL (one worker waited on it about 55 % of its time). Their routing
# passes take the same load-row locks in user-id order, as several consumers do.
WORKERS = 2


class AssignmentHandler(DatabaseHandler):
    """Stores and routes batches of events from events.outbound."""

    queue = broker.OUTBOUND
    message = OutboundEvent

    def __init__(self, settings: Settings):
        self.presence = Presence(resources.redis_client(settings), settings)
        super().__init__(settings, resources.assignment_connection)

    def handle(self, events: list[OutboundEvent]) -> None:
        result = assignment.receive(self.conn, self.presence, self.settings, events)
        log.info("batch of %d: %d stored, %d assigned", len(events), result.stored,
                 len(result.assigned))

    def on_dead_letter(self, delivery: Delivery, reason: str, kind: str) -> None:
        """Called by the runner before it dead-letters a message: where the body names an
        event, record it, so relay-poll stops re-dispatching an event never storable."""
        event_id = event_id_of(delivery.body, self.settings.MESSAGE_MAX_BYTES)
        if event_id is not None:
            rejected_events.record(self.conn, event_id, delivery.body, reason, kind)
            log.warning("event %s dead-lettered (%s): %s", event_id, kind, reason)

    def idle(self) -> None:
        """The periodic sweep: route anything still waiting."""
        assigned = assignment.route_waiting(self.conn, self.presence, self.settings)
        if assigned:
            log.info("sweep assigned %d waiting event(s)", assigned)


def run(settings: Settings) -> None:
    handlers = [AssignmentHandler(settings) for _ in range(WORKERS)]
    reconcile_counters(handlers[0].conn, handlers[0].presence)
    BatchConsumer(
        settings,
        handlers[0],
        name="assignment",
        prefetch=settings.ASSIGNMENT_BATCH_SIZE * (WORKERS + 1),
        batch_size=settings.ASSIGNMENT_BATCH_SIZE,
        idle_every=settings.BACKFILL_SWEEP_SECONDS,
        more_handlers=handlers[1:],
    ).run()
