"""`python -m consumers NAME`: run one long-running process (any number of copies at once)."""

from __future__ import annotations

import contextlib
import importlib
import sys

from common import logs, metrics
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
    logs.configure(argv[0], settings)
    metrics.serve(argv[0], settings)
    module = importlib.import_module(PROCESSES[argv[0]])
    with contextlib.suppress(KeyboardInterrupt):
        module.run(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
