"""`python -m consumers NAME`: run one long-running process (any number of copies at once).

`python -m consumers healthcheck NAME` exits 0 when a process NAME of this namespace on this
machine has beaten recently (common/heartbeat.py), else 1: the compose health check.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys

from common import heartbeat, logs, metrics
from common.production import refuse_unsafe_start
from common.settings import load_settings

# NAME -> module under consumers/ whose `run(settings)` runs until stopped.
PROCESSES = {
    "relay": "consumers.relay",
    "assignment": "consumers.assignment",
    "inbound": "consumers.inbound",
    "ack": "consumers.ack",
}


def healthcheck(argv: list[str]) -> int:
    """`python -m consumers healthcheck NAME`: 0 when NAME's own beat is fresh."""
    if len(argv) != 1 or argv[0] not in heartbeat.PROCESSES:
        print(f"usage: python -m consumers healthcheck {{{'|'.join(heartbeat.PROCESSES)}}}",
              file=sys.stderr)
        return 2
    if heartbeat.fresh_locally(load_settings(), argv[0]):
        return 0
    print(f"{argv[0]}: no fresh heartbeat", file=sys.stderr)
    return 1


# Commands that run once and exit: `python -m consumers dlq|replay QUEUE`.
TOOLS = ("dlq", "replay")


def main(argv: list[str]) -> int:
    if argv[:1] == ["healthcheck"]:
        return healthcheck(argv[1:])
    if len(argv) == 2 and argv[0] in TOOLS:
        return dead_letters(*argv)
    if len(argv) != 1 or argv[0] not in PROCESSES:
        print(f"usage: python -m consumers {{{'|'.join(PROCESSES)}}} "
              f"| {{{'|'.join(TOOLS)}}} QUEUE", file=sys.stderr)
        return 2
    settings = load_settings()
    logs.configure(argv[0], settings)
    refuse_unsafe_start(settings)
    metrics.serve(argv[0], settings)
    module = importlib.import_module(PROCESSES[argv[0]])
    beating = heartbeat.start(settings, argv[0])
    try:
        with contextlib.suppress(KeyboardInterrupt):
            module.run(settings)
    finally:
        beating.stop()
    return 0


def dead_letters(command: str, queue: str) -> int:
    """`dlq QUEUE` prints a summary; `replay QUEUE` moves back what now parses."""
    from consumers import dlq

    settings = load_settings()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pika").setLevel(logging.CRITICAL)  # its failures come back as one line
    try:
        if command == "dlq":
            print("\n".join(dlq.summarise(settings, queue).lines()))
        else:
            done = dlq.replay(settings, queue)
            print(f"{done.queue}: {done.moved} replayed, {done.kept} left (still invalid)")
    except dlq.DeadLetterError as error:
        print(f"{command}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
