"""Three extra RabbitMQ nodes on this machine, clustered: rb1, rb2 and rb3@localhost.

`make bench-cluster` and the failover test (tests/integration/test_broker_failover.py)
stand on this; by hand: `python -m bench.rabbit_cluster start|status|stop [--wipe] [--solo]`.

| node           | AMQP port | distribution port |
|----------------|-----------|-------------------|
| rb1@localhost  | 5681      | 25681             |
| rb2@localhost  | 5682      | 25682             |
| rb3@localhost  | 5683      | 25683             |
| rb0@localhost  | 5680      | 25680             | (standalone, for comparison)

The machine's own server (rabbit@localhost, port 5672) is never a target: joining a cluster
resets a node, so every command here names one of the nodes above with `rabbitmqctl -n`,
and `_ctl` refuses any other name.

How a node starts (FIELD-NOTES.md, "More RabbitMQ nodes on one machine"): as root, the start
script runs the node as the `rabbitmq` user, so its directory (`RABBIT_CLUSTER_DIR`, default
/tmp/event-assignment-rabbit/<node>) belongs to `rabbitmq`. It holds the node's config (only
its listener: the machine's /etc/rabbitmq/rabbitmq.conf pins 5672), an empty plugin list (no
management), its database and its logs. The node runs in the background, not `-detached`
(which failed silently here). It reads the same Erlang cookie as the machine's node
(/var/lib/rabbitmq/.erlang.cookie), which is what lets rabbitmqctl and the three nodes speak.

Idempotent: `start` starts only the nodes that are not running and joins only those not yet
in the cluster; `stop` stops only those running. A node restarted with its old directory
rejoins by itself. Failures raise ClusterError with one line.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

BASE = Path(os.environ.get("RABBIT_CLUSTER_DIR", "/tmp/event-assignment-rabbit"))
MACHINE_NODE = "rabbit@localhost"
START_TIMEOUT = 180.0  # a node answers in about 20 s on an idle machine; ours is shared


class ClusterError(RuntimeError):
    """A node would not start, join or stop; the message is one line saying which and why."""


@dataclass(frozen=True)
class Node:
    name: str
    amqp_port: int
    dist_port: int

    @property
    def nodename(self) -> str:
        return f"{self.name}@localhost"

    @property
    def url(self) -> str:
        """The node's AMQP URL (guest may log in over loopback only, as here)."""
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/%2F"

    @property
    def home(self) -> Path:
        return BASE / self.name


NODES = (Node("rb1", 5681, 25681), Node("rb2", 5682, 25682), Node("rb3", 5683, 25683))
# A standalone node started the same way, for comparison: the machine's own node carries
# every other session's queues, so it cannot stand beside the cluster as a ceiling.
SOLO = Node("rb0", 5680, 25680)


def urls(nodes=NODES) -> str:
    """RABBITMQ_URL for clients of these nodes: their URLs, comma-separated, in order."""
    return ",".join(node.url for node in nodes)


# -- rabbitmqctl ---------------------------------------------------------------------------


def _ctl(node: Node, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    if node.nodename == MACHINE_NODE or node.amqp_port == 5672:
        raise ClusterError(f"refusing to touch the machine's own node {MACHINE_NODE}")
    try:
        return subprocess.run(["rabbitmqctl", "-n", node.nodename, "-q", *args],
                              capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise ClusterError("rabbitmqctl not found: install rabbitmq-server") from None
    except subprocess.TimeoutExpired:
        raise ClusterError(f"rabbitmqctl {args[0]} on {node.nodename} took over "
                           f"{timeout:.0f} s") from None


def _must(node: Node, *args: str, timeout: float = 120) -> str:
    """Run a rabbitmqctl command that has to succeed; its output, or ClusterError."""
    result = _ctl(node, *args, timeout=timeout)
    if result.returncode != 0:
        why = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
        raise ClusterError(f"rabbitmqctl {' '.join(args)} on {node.nodename} failed: {why[0]}")
    return result.stdout


def is_running(node: Node) -> bool:
    """The node's runtime is up and the CLI can authenticate with it."""
    return _ctl(node, "ping", timeout=30).returncode == 0


def running_nodes(node: Node) -> list[str]:
    """Node names running in the cluster `node` belongs to (as `node` sees it)."""
    status = json.loads(_must(node, "cluster_status", "--formatter", "json"))
    return sorted(status.get("running_nodes", []))


# -- one node ------------------------------------------------------------------------------


def _prepare(node: Node) -> dict[str, str]:
    """The node's directory, config and plugin list; returns its environment."""
    for sub in ("mnesia", "log"):
        (node.home / sub).mkdir(parents=True, exist_ok=True)
    config = node.home / f"{node.name}.conf"
    config.write_text(f"listeners.tcp.local = 127.0.0.1:{node.amqp_port}\n")
    (node.home / "plugins").write_text("[].\n")
    for path in [node.home, *node.home.rglob("*")]:
        shutil.chown(path, "rabbitmq", "rabbitmq")
    return {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "LANG": "C.UTF-8",
        "RABBITMQ_NODENAME": node.nodename,
        "RABBITMQ_DIST_PORT": str(node.dist_port),
        "RABBITMQ_CONFIG_FILE": str(config),
        "RABBITMQ_MNESIA_BASE": str(node.home / "mnesia"),
        "RABBITMQ_LOG_BASE": str(node.home / "log"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(node.home / "plugins"),
    }


def _port_taken(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _can_start() -> None:
    """What starting a node needs here, or ClusterError saying what is missing."""
    if shutil.which("rabbitmq-server") is None:
        raise ClusterError("rabbitmq-server not found: install RabbitMQ (3.10 here)")
    if os.geteuid() != 0:
        raise ClusterError("starting nodes needs root: the start script runs each node as "
                           "the rabbitmq user, in a directory it must own")
    try:
        pwd.getpwnam("rabbitmq")
    except KeyError:
        raise ClusterError("no rabbitmq user on this machine: install RabbitMQ's package") from None


def start_node(node: Node) -> bool:
    """Start one node in the background unless it runs; True when it was started."""
    if is_running(node):
        return False
    _can_start()
    for port in (node.amqp_port, node.dist_port):
        if _port_taken(port):
            raise ClusterError(f"port {port} for {node.nodename} is taken by another process")
    environment = _prepare(node)
    with open(node.home / "server.out", "ab") as out:
        subprocess.Popen(["rabbitmq-server"], env=environment, stdout=out,
                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True)
    return True


def wait_node(node: Node, timeout: float = START_TIMEOUT) -> None:
    """Until the node's RabbitMQ application runs, or ClusterError naming its log."""
    deadline = time.monotonic() + timeout
    while not is_running(node):
        if time.monotonic() > deadline:
            raise ClusterError(f"{node.nodename} did not answer within {timeout:.0f} s; "
                               f"see {node.home / 'server.out'} and {node.home / 'log'}")
        time.sleep(1)
    _must(node, "await_startup", "--timeout", str(int(timeout)), timeout=timeout + 10)


def stop_node(node: Node) -> bool:
    """Stop one node (its whole runtime) unless it is already down; True when stopped."""
    if not is_running(node):
        return False
    _must(node, "shutdown", timeout=120)
    return True


# -- the cluster ---------------------------------------------------------------------------


def join(nodes=NODES) -> None:
    """Join every node to the first one's cluster (stop_app, join_cluster, start_app)."""
    seed = nodes[0]
    for node in nodes[1:]:
        if node.nodename in running_nodes(seed):
            continue
        _must(node, "stop_app")
        _must(node, "reset")  # a node joins only from a blank state; ours holds nothing
        _must(node, "join_cluster", seed.nodename)
        _must(node, "start_app")
    members = running_nodes(seed)
    missing = [n.nodename for n in nodes if n.nodename not in members]
    if missing:
        raise ClusterError(f"{', '.join(missing)} not running in {seed.nodename}'s cluster")


def start(nodes=NODES) -> list[str]:
    """Start the nodes that are down (in parallel), wait for all, join them to the first;
    returns the cluster's running nodes (one node: a standalone node)."""
    with ThreadPoolExecutor(len(nodes)) as pool:
        list(pool.map(start_node, nodes))
        list(pool.map(wait_node, nodes))
    join(nodes)
    return running_nodes(nodes[0])


def stop(nodes=NODES, wipe: bool = False) -> None:
    """Stop every node that runs; `wipe` also deletes their directories (a fresh cluster
    next time)."""
    with ThreadPoolExecutor(len(nodes)) as pool:
        list(pool.map(stop_node, nodes))
    if wipe:
        for node in nodes:
            shutil.rmtree(node.home, ignore_errors=True)


def queue_members(node: Node, prefix: str) -> dict[str, dict]:
    """{queue: {"type", "members", "leader"}} for the queues whose name starts with `prefix`,
    as `node` reports them (`rabbitmqctl list_queues name type members leader`)."""
    rows = json.loads(_must(node, "list_queues", "name", "type", "members", "leader",
                            "--formatter", "json"))
    return {row["name"]: {"type": row["type"], "members": sorted(row["members"] or []),
                          "leader": row.get("leader")}
            for row in rows if row["name"].startswith(prefix)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rabbit_cluster",
                                     description="Three extra RabbitMQ nodes, clustered.")
    parser.add_argument("command", choices=("start", "status", "stop"))
    parser.add_argument("--solo", action="store_true", help="the standalone rb0 instead")
    parser.add_argument("--wipe", action="store_true", help="stop: delete the nodes' data")
    args = parser.parse_args(argv)
    nodes = (SOLO,) if args.solo else NODES
    try:
        if args.command == "start":
            print(f"running: {', '.join(start(nodes))}")
            print(f"RABBITMQ_URL={urls(nodes)}")
        elif args.command == "status":
            for node in nodes:
                up = is_running(node)
                print(f"{node.nodename} {'up' if up else 'down'} (AMQP {node.amqp_port})")
        else:
            stop(nodes, wipe=args.wipe)
            print("stopped")
    except ClusterError as error:
        print(f"rabbit cluster: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
