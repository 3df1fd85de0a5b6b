"""The length limit of the dead-letter queues: a RabbitMQ policy (`python -m consumers.dlq_policy`).

A policy, not a queue argument: redeclaring an existing queue with new arguments fails with
PRECONDITION_FAILED, while a policy applies to queues already there and can change later.
`make db` runs this, and so does the compose stack's one-shot `migrate` (through the
broker's management API). The limit is DLQ_MAX_LENGTH with `drop-head`:
a flood pushes out the oldest dead letters instead of filling the disk (the runner logs and
counts it, see consumers/dlq.py `note_depth`).

Applied with `rabbitmqctl` when it is on this machine and allowed, else through the
management HTTP API when it answers, else a warning saying how to apply it by hand.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
from urllib.parse import quote, unquote, urlparse

import httpx

from common.adapters import broker
from common.settings import Settings, load_settings

log = logging.getLogger(__name__)

MANAGEMENT_PORT = 15672


def policy_name(settings: Settings) -> str:
    return f"{settings.NAMESPACE}.dlq-length" if settings.NAMESPACE else "dlq-length"


def pattern(settings: Settings) -> str:
    """The three `.dlq` queues of this NAMESPACE, and nothing else."""
    names = "|".join(re.escape(broker.dlq_name(base)) for base in broker.QUEUES)
    prefix = re.escape(f"{settings.NAMESPACE}.") if settings.NAMESPACE else ""
    return f"^{prefix}({names})$"


def definition(settings: Settings) -> dict:
    return {"max-length": settings.DLQ_MAX_LENGTH, "overflow": "drop-head"}


def apply(settings: Settings) -> str:
    """Set the policy; returns how ('rabbitmqctl' or 'management API'), or raises
    RuntimeError with one line when neither way works. rabbitmqctl only for a broker on
    this machine; the management API is asked on the host of each broker address in turn
    (a policy set on one node of a cluster holds for all of them)."""
    if _broker_is_local(settings) and shutil.which("rabbitmqctl") and _with_rabbitmqctl(settings):
        return "rabbitmqctl"
    hosts = list(dict.fromkeys(urlparse(url).hostname or "" for url in settings.rabbitmq_urls))
    if any(_with_management_api(settings, url) for url in settings.rabbitmq_urls):
        return "management API"
    raise RuntimeError(
        f"could not set the dead-letter length policy (no usable rabbitmqctl, no management "
        f"API on port {MANAGEMENT_PORT} of {', '.join(hosts)}); set it by hand on one node: "
        f"rabbitmqctl [-n NODE] set_policy --apply-to queues {policy_name(settings)} "
        f"'{pattern(settings)}' '{json.dumps(definition(settings))}'")


def vhost(broker_url: str) -> str:
    """The virtual host of a broker address (its path; `/` when there is none)."""
    path = urlparse(broker_url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def _broker_is_local(settings: Settings) -> bool:
    """rabbitmqctl speaks to this machine's own node (rabbit@host, AMQP on 5672): use it only
    when that node is the broker, not for other nodes started here on other ports."""
    first = urlparse(settings.rabbitmq_url)
    return (first.hostname or "") in ("localhost", "127.0.0.1", "::1") and (
        first.port or 5672) == 5672


def clear(settings: Settings) -> None:
    """Remove this namespace's policy (tests call it when they are done)."""
    subprocess.run(["rabbitmqctl", "-q", "-p", vhost(settings.rabbitmq_url), "clear_policy",
                    policy_name(settings)], capture_output=True, timeout=60, check=False)


def _with_rabbitmqctl(settings: Settings) -> bool:
    command = ["rabbitmqctl", "-q", "-p", vhost(settings.rabbitmq_url), "set_policy",
               "--apply-to", "queues", "--priority", "10", policy_name(settings),
               pattern(settings), json.dumps(definition(settings))]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        log.info("rabbitmqctl unusable: %r", error)
        return False
    if result.returncode != 0:
        log.info("rabbitmqctl refused: %s", (result.stderr or result.stdout).strip()[:200])
    return result.returncode == 0


def _with_management_api(settings: Settings, broker_url: str) -> bool:
    """PUT the policy to the management API on the host of `broker_url`, with its user."""
    address = urlparse(broker_url)
    host = f"[{address.hostname}]" if ":" in (address.hostname or "") else address.hostname
    url = (f"http://{host}:{MANAGEMENT_PORT}/api/policies/"
           f"{quote(vhost(broker_url), safe='')}/{quote(policy_name(settings), safe='')}")
    body = {"pattern": pattern(settings), "definition": definition(settings),
            "priority": 10, "apply-to": "queues"}
    try:
        answer = httpx.put(url, json=body, timeout=10,
                           auth=(unquote(address.username or "guest"),
                                 unquote(address.password or "guest")))
    except httpx.HTTPError as error:
        log.info("management API unreachable: %r", error)
        return False
    return answer.status_code in (200, 201, 204)


def main() -> int:
    """`make db` calls this: set the policy, or warn (without failing) saying how."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    try:
        how = apply(settings)
    except RuntimeError as error:
        print(f"warning: {error}", file=sys.stderr)
        return 0
    print(f"dead-letter queues limited to {settings.DLQ_MAX_LENGTH} messages "
          f"(policy {policy_name(settings)}, via {how})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
