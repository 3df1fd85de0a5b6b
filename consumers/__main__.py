"""`python -m consumers NAME`: run one long-running process (any number of copies at once)."""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys

from common.production import refuse_unsafe_start
from common.settings import load_settings

# NAME -> module under consumers/ whose `run(settings)` runs until stopped.
PROCESSES = {
    "relay": "consumers.relay",
    "assignment": "consumers.assignment",
    "inbound": "consumers.inbound",
    "ack": "consumers.ack",
}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in PROCESSES:
        print(f"usage: python -m consumers {{{'|'.join(PROCESSES)}}}", file=sys.stderr)
        return 2
    settings = load_settings()
    refuse_unsafe_start(settings)
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
