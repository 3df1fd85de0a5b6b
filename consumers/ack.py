"""`python -m consumers ack`: ack.queue -> outbox row finished -> ack.

Idempotent: an ack for a row already finished changes nothing. An ack naming an assignment
that has no outbox row can never be processed: it is dead-lettered with the reason.
"""

from __future__ import annotations

import logging

from common import metrics, resources
from common.adapters import broker
from common.messages import BadMessage, DecisionMessage
from common.services import outbox
from common.settings import Settings
from consumers.runner import BatchConsumer, DatabaseHandler

log = logging.getLogger(__name__)


class AckHandler(DatabaseHandler):
    """Finishes the outbox rows of batches of acknowledgements."""

    queue = broker.ACK
    message = DecisionMessage

    def __init__(self, settings: Settings):
        super().__init__(settings, resources.assignment_connection)

    def handle(self, acks: list[DecisionMessage]) -> None:
        result = outbox.finish(self.conn, [a.assignment_id for a in acks])
        if result.unknown:
            raise BadMessage(f"unknown assignment {result.unknown[0]}: no outbox row",
                             "unknown_reference")
        metrics.OUTBOX_FINISHED.inc(len(result.finished))
        if log.isEnabledFor(logging.DEBUG):
            finished = set(result.finished)
            for ack in acks:
                if ack.assignment_id in finished:
                    finished.discard(ack.assignment_id)
                    log.debug("event %s (assignment %s): outbox row finished", ack.event_id,
                              ack.assignment_id)
        log.info("finished %d outbox row(s) of %d ack(s)", len(result.finished), len(acks))


def run(settings: Settings) -> None:
    BatchConsumer(settings, AckHandler(settings), name="ack",
                  prefetch=1000, batch_size=500).run()
