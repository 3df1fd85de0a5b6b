"""`make bench-cluster`: the RabbitMQ cluster and scale-out benchmark (issue 10, item 3).

Not built yet: it says so and exits non-zero, so nobody mistakes silence for a result.
"""

from __future__ import annotations

import sys


def main() -> int:
    print("make bench-cluster: not built yet (issue 10, item 3: a RabbitMQ cluster and "
          "scale-out); no figures written", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
