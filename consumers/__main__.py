"""`python -m consumers NAME`: run one long-running process (any number of copies at once)."""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys

from common.settings import load_settings

# NAME -> module under consumers/ whose `run(settings)` runs until stopped.
PROCESSES = {
    "relay": "consumers.relay",
    "assignment": "consumers.assignment",
    "inbound": "consumers.inbound",
    "ack": "consumers.ack",
}


# Commands that run once and exit: `python -m consumers dlq|replay QUEUE`.
TOOLS = ("dlq", "replay")


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] in TOOLS:
        return dead_letters(*argv)
    if len(argv) != 1 or argv[0] not in PROCESSES:
        print(f"usage: python -m consumers {{{'|'.join(PROCESSES)}}} "
              f"| {{{'|'.join(TOOLS)}}} QUEUE", file=sys.stderr)
        return 2
    settings = load_settings()
    logging.basicConfig(
        level=settings.LOG_LEVEL,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # pika narrates every connection step at INFO; its warnings and errors still show.
    logging.getLogger("pika").setLevel(max(logging.WARNING, logging.getLogger().level))
    module = importlib.import_module(PROCESSES[argv[0]])
    with contextlib.suppress(KeyboardInterrupt):
        module.run(settings)
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
