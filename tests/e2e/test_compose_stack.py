"""The compose stack, proven without a Docker engine.

Every application service of docker-compose.yml runs its own `command` with its own
`environment`, as a local process against the PostgreSQL, Redis and RabbitMQ of this
machine (service hostnames -> 127.0.0.1): first the one-shot `migrate`, then every
long-running service, then `event-generator 100`. The only overrides are those a test needs
for isolation: database names, NAMESPACE, ports and PREFECT_HOME (plus PATH and PYTHONPATH,
the image's own variables, pointing at this checkout instead of /app). Anything else this
test would have to change is a bug in the compose file.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest

from common.settings import Settings
from tests import servers
from tests.e2e import compose
from tests.processes import ROOT, eventually, free_port, stop

SERVER_HOSTS = {"postgres", "redis", "rabbitmq"}
PUBLISHED = (3000, 3001, 4200)  # API, console, Prefect (DESIGN.md "Ports")
# What a deployer exports: the credentials compose requires. These work against the local
# servers (RabbitMQ's guest from localhost; any PostgreSQL password under trust
# authentication); everything else keeps the compose file's defaults.
DEPLOYER_ENV: dict[str, str] = {"POSTGRES_PASSWORD": "postgres", "RABBITMQ_USER": "guest",
                                "RABBITMQ_PASSWORD": "guest"}
OPERATORS = {"john.smith": 1, "carlos.garcia": 3, "liu.yang": 4, "mike.ross": 6}


# -- what the file declares ----------------------------------------------------------------

def test_every_service_declares_its_image_ports_volumes_and_health_checks():
    spec = compose.load(DEPLOYER_ENV)
    services = spec["services"]
    for name, service in services.items():
        assert service.get("image") or service.get("build"), f"{name}: no image or build"
        if "build" in service:
            assert service["image"] == "event-assignment:latest", name
    mappings = [str(p).split(":") for svc in services.values() for p in svc.get("ports", [])]
    published = {int(parts[-2]): parts[:-2] for parts in mappings}
    assert set(published) >= {3000, 3001, 4200, 15672}
    # Prefect and the broker's management UI are for this machine only (issue 7).
    assert published[4200] == ["127.0.0.1"] and published[15672] == ["127.0.0.1"]
    declared = set(spec.get("volumes") or {})
    used = {str(v).split(":")[0] for svc in services.values() for v in svc.get("volumes", [])}
    named = {v for v in used if not v.startswith((".", "/"))}
    assert named <= declared, f"volumes used but not declared: {named - declared}"
    assert {"postgres-data", "rabbitmq-data", "prefect-data"} <= named
    for path in used - named:
        assert (ROOT / path).exists(), f"mounted file missing: {path}"
    awaited = {dep for svc in services.values()
               for dep, cond in _conditions(svc.get("depends_on"))
               if isinstance(cond, dict) and cond.get("condition") == "service_healthy"}
    for name in awaited | {"postgres", "redis", "rabbitmq", "prefect-server"}:
        assert services[name].get("healthcheck", {}).get("test"), f"{name}: no health check"


def _conditions(depends_on) -> list[tuple[str, object]]:
    """depends_on in either compose form: a list of names, or names with conditions."""
    if isinstance(depends_on, list):
        return [(name, None) for name in depends_on]
    return list((depends_on or {}).items())


def test_the_dockerfile_is_slim_non_root_and_locked():
    text = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM\s+(\S+)", text, re.M).group(1)
    assert "@sha256:" in base or re.search(r":\d+\.\d+\.\d+-slim", base), base
    assert re.search(r"uv==\d+\.\d+\.\d+|astral-sh/uv:\d+\.\d+\.\d+", text), "uv not pinned"
    assert re.search(r"uv sync[^\n]*--frozen[^\n]*--no-dev|uv sync[^\n]*--no-dev[^\n]*--frozen",
                     text)
    user = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert user and user[-1] not in ("root", "0")


def test_the_one_shot_migrate_sets_the_dead_letter_limit_as_make_db_does():
    spec = compose.load(DEPLOYER_ENV)
    command = " ".join(spec["services"]["migrate"]["command"])
    assert "common.adapters.migrations" in command and "consumers.dlq_policy" in command
    assert "rabbitmq" in spec["services"]["migrate"]["depends_on"]


# -- the stack, running ----------------------------------------------------------------------

class Stack:
    """The compose services as local processes, with the test's isolation overrides."""

    def __init__(self, workdir: Path):
        self.run_id = uuid.uuid4().hex[:8]
        self.workdir = workdir
        self.spec = compose.load(DEPLOYER_ENV)
        self.services = compose.app_services(self.spec)
        self.ports = {port: free_port() for port in PUBLISHED}
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        self.settings = Settings(_env_file=None, POSTGRES_DB_RELAY=f"compose_relay_{self.run_id}",
                                 POSTGRES_DB_ASSIGNMENT=f"compose_assignment_{self.run_id}",
                                 NAMESPACE=f"c{self.run_id}")

    def environment(self, name: str) -> dict[str, str]:
        service = self.services[name]
        env = compose.local_environment(service, SERVER_HOSTS | set(self.spec["services"]))
        env = compose.remap_ports(env, self.ports)
        env.update(  # the isolation overrides, and nothing else
            POSTGRES_DB_RELAY=self.settings.POSTGRES_DB_RELAY,
            POSTGRES_DB_ASSIGNMENT=self.settings.POSTGRES_DB_ASSIGNMENT,
            NAMESPACE=self.settings.NAMESPACE,
            METRICS_PORT="0",
        )
        if "PREFECT_HOME" in env:
            env["PREFECT_HOME"] = str(self.workdir / "prefect")
        # What the image sets: the code and its venv (here, this checkout), a home.
        env.update(PATH=f"{ROOT / '.venv/bin'}:/usr/bin:/bin", PYTHONPATH=str(ROOT),
                   PYTHONUNBUFFERED="1", HOME=str(self.workdir))
        return env

    def start(self, name: str, command: list[str] | None = None) -> subprocess.Popen:
        args = compose.remap_ports(compose.argv(self.services[name], command), self.ports)
        log = self.workdir / f"{name}.log"
        self.logs[name] = log
        with log.open("ab") as out:
            proc = subprocess.Popen(args, cwd=ROOT, env=self.environment(name), stdout=out,
                                    stderr=subprocess.STDOUT)
        self.procs[name] = proc
        return proc

    def run_once(self, name: str, command: list[str] | None = None, timeout=180) -> None:
        proc = self.start(name, command)
        assert proc.wait(timeout) == 0, f"{name} failed:\n{self.tail(name)}"

    def healthy(self, name: str) -> bool:
        """The service's own health check command, run locally."""
        test = self.services[name]["healthcheck"]["test"]
        args = compose.remap_ports(test[1:] if test[0] == "CMD" else ["sh", "-c", test[1]],
                                   self.ports)
        return subprocess.run(args, env=self.environment(name), capture_output=True,
                              timeout=30).returncode == 0

    def url(self, port: int) -> str:
        return f"http://127.0.0.1:{self.ports[port]}"

    def tail(self, name: str) -> str:
        return self.logs[name].read_text(errors="replace")[-3000:] if name in self.logs else ""

    @contextlib.contextmanager
    def explained(self):
        """Print each process's log if what runs inside fails."""
        try:
            yield
        except BaseException:
            for name in self.logs:
                print(f"--- {name}:\n{self.tail(name)}")
            raise

    def close(self) -> None:
        """SIGTERM to every process at once (as `docker compose down`), then wait for each."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            stop(proc, timeout=20)
        servers.tear_down(self.settings)


@pytest.fixture
def stack(base_settings):
    with tempfile.TemporaryDirectory(prefix="compose-") as tmp:
        running = Stack(Path(tmp))
        try:
            yield running
        finally:
            running.close()


def test_the_stack_runs_from_its_compose_commands_and_decides_an_event(stack):
    with stack.explained():
        run_the_stack(stack)


def run_the_stack(stack: Stack) -> None:
    started = time.monotonic()
    stack.run_once("migrate")
    stack.start("prefect-server")
    eventually(lambda: stack.healthy("prefect-server"), timeout=180, interval=1,
               message="prefect-server passes its health check")
    long_running = [n for n, s in stack.services.items()
                    if n not in stack.procs and s.get("restart") != "no"]
    assert set(long_running) >= {"deployments", "relay", "assignment", "inbound", "ack",
                                 "api", "console"}
    for name in long_running:
        stack.start(name)
    api = stack.url(3000)
    eventually(lambda: _get(f"{api}/health") == 200, timeout=90, interval=0.5,
               message="the API answers /health")
    eventually(lambda: _get(f"{stack.url(3001)}/_stcore/health") == 200, timeout=60,
               message="the console answers")
    stack.run_once("event-generator", ["100"])

    tokens = {name: _login(api, name) for name in OPERATORS}
    user, token, item = eventually(lambda: _first_assignment(api, tokens), timeout=90,
                                   interval=0.5, message="an operator is assigned an event")
    answer = httpx.put(f"{api}/assignments/{item['assignment_id']}",
                       json={"status": "approved"}, headers=_bearer(token), timeout=10)
    assert answer.status_code == 200, answer.text
    eventually(lambda: _source_state(stack.settings, item["event_id"]) == "Viewed",
               timeout=90, message="the decision reaches the source event")
    for name, proc in stack.procs.items():
        if name not in ("migrate", "event-generator"):
            assert proc.poll() is None, f"{name} exited:\n{stack.tail(name)}"
    print(f"stack up, one event assigned and decided in {time.monotonic() - started:.0f}s")

    # Last, so that everything above runs on every branch: the process heartbeats of /health
    # (DESIGN.md "Operations") come with the supervision work.
    body = eventually(lambda: _processes_ok(api), timeout=60, interval=1,
                      message="/health reports every process ok")
    assert body["status"] == "ok", body


def _get(url: str) -> int | None:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(url, timeout=5).status_code
    return None


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _login(api: str, username: str) -> str:
    answer = httpx.post(f"{api}/auth/login", json={"username": username,
                                                   "password": "pass123"}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]


def _first_assignment(api: str, tokens: dict):
    for username, token in tokens.items():
        user = OPERATORS[username]
        answer = httpx.get(f"{api}/users/{user}/assignments", headers=_bearer(token),
                           timeout=10)
        if answer.status_code == 200 and answer.json():
            return user, token, answer.json()[0]
    return None


def _source_state(settings: Settings, event_id) -> str | None:
    with psycopg.connect(settings.relay_dsn) as conn:
        row = conn.execute("SELECT state FROM events WHERE event_id = %s",
                           [event_id]).fetchone()
    return row[0] if row else None


def _processes_ok(api: str):
    body = httpx.get(f"{api}/health", timeout=5).json()
    if "processes" not in body:
        pytest.xfail("/health has no process heartbeats on this branch (supervision's work)")
    processes = body["processes"]
    names = {"relay", "assignment", "inbound", "ack", "deployments"}
    ok = names <= set(processes) and all(p["status"] == "ok" for p in processes.values())
    return body if ok else None
