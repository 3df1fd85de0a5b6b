"""The runner's judgement of a message whose handler fails in a way nobody foresaw: dead
letter when batch-mates succeed, requeue and back off otherwise, never an exit."""

from __future__ import annotations

from common.adapters import broker
from consumers.fate import safe_headers
from consumers.runner import BatchConsumer, Delivery
from tests import helpers


class Picky:
    """A handler that fails on 'poison' items the way a bug would (not a BadMessage)."""

    queue = broker.OUTBOUND

    def __init__(self, settings):
        self.settings = settings
        self.handled: list = []
        self.told: list = []

    def handle(self, items):
        if "poison" in items:
            raise RuntimeError("a bug\nwith two lines")
        self.handled.extend(items)

    def on_dead_letter(self, delivery, reason, kind):
        self.told.append((delivery.tag, kind))

    def reset(self):
        pass


def consumer(settings):
    handler = Picky(settings)
    return BatchConsumer(settings, handler, name="test-fate"), handler


def delivery(tag: int, **headers) -> Delivery:
    return Delivery(tag, b"{}", headers)


def test_a_message_failing_alone_beside_good_batch_mates_is_dead_lettered_at_once(settings):
    runner, handler = consumer(settings)
    bad: dict = {}
    good = [(delivery(1), "a"), (delivery(2), "poison"), (delivery(3), "b")]
    assert runner._handle(good, bad) == []
    assert handler.handled == ["a", "b"]
    (_, reason, kind), = bad.values()
    assert kind == "handler_failed" and "RuntimeError: a bug" in reason and "\n" not in reason


def test_a_lone_failure_is_requeued_with_back_off_and_the_process_keeps_going(settings):
    runner, _ = consumer(settings)
    for attempt in range(1, 4):
        bad: dict = {}
        assert [d.tag for d in runner._handle([(delivery(7), "poison")], bad)] == [7]
        assert bad == {} and runner.stats["requeued"] == attempt
    assert runner._unknown_in_a_row == 3


def test_on_its_last_delivery_a_lone_failure_is_dead_lettered_with_the_reason(settings):
    runner, handler = consumer(settings)
    bad: dict = {}
    last = delivery(9, **{"x-delivery-count": settings.RABBITMQ_DELIVERY_LIMIT})
    assert runner._handle([(last, "poison")], bad) == []
    assert bad[9][2] == "handler_failed"
    runner._dead_letter(*bad[9])
    [(body, headers)] = helpers.drain(settings, broker.dlq_name(settings.name(broker.OUTBOUND)))
    assert headers["x-death-kind"] == "handler_failed" and handler.told == [(9, "handler_failed")]
    runner._dlq.close()


def test_odd_headers_never_block_a_dead_letter(settings):
    runner, _ = consumer(settings)
    odd = {"big": 2**70, "ok": "yes", "nested": {"a": [1]}, "long": "x" * 5000, "n": 3}
    assert safe_headers(odd) == {"ok": "yes", "n": 3}
    runner._dead_letter(Delivery(1, b"body", odd), "why", "invalid_json")
    [(body, headers)] = helpers.drain(settings, broker.dlq_name(settings.name(broker.OUTBOUND)))
    assert body == b"body" and headers["ok"] == "yes" and headers["x-death-reason"] == "why"
    runner._dlq.close()
