"""docker-compose.yml read without an engine: services, their commands and environments.

Used by tests/e2e/test_compose_stack.py to start each application service's `command`, with
that service's `environment`, as a local process. Interpolation follows compose
(`${VAR}`, `${VAR:-default}`, `${VAR-default}`, `$$`) from a deployer's environment the test
chooses; service hostnames become 127.0.0.1. Nothing else is changed here: what a test must
override for isolation (database names, NAMESPACE, ports, PREFECT_HOME) it says itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
_VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}")
_URL_HOST = re.compile(r"^(\w+://(?:[^@/]*@)?)([\w.-]+)(.*)$")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable substitution in one value."""
    def value(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, default = match.groups()
        if operator == ":-":
            return env.get(name) or default
        if operator == "-":
            return env.get(name, default)
        if operator in (":?", "?") and not env.get(name):
            # Compose refuses to start without it: so does this test.
            raise KeyError(f"{name} must be set: {default}")
        return env.get(name, "")
    return _VARIABLE.sub(value, text)


def load(env: dict[str, str], path: Path = COMPOSE_FILE) -> dict:
    """The compose file, every string value interpolated from `env` (YAML anchors and
    merge keys resolved)."""
    return _walk(yaml.safe_load(path.read_text()), env)


def _walk(node, env: dict[str, str]):
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: _walk(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [_walk(item, env) for item in node]
    return node


def app_services(spec: dict) -> dict[str, dict]:
    """The services built from this repository (the product's own processes)."""
    return {name: svc for name, svc in spec["services"].items() if "build" in svc}


def argv(service: dict, command: list[str] | None = None) -> list[str]:
    """entrypoint + command, as the container would run them (`command` overrides)."""
    entrypoint = service.get("entrypoint") or []
    entrypoint = entrypoint.split() if isinstance(entrypoint, str) else list(entrypoint)
    if command is None:
        command = service.get("command") or []
        command = command.split() if isinstance(command, str) else list(command)
    return [*entrypoint, *command]


def local_environment(service: dict, hosts: set[str]) -> dict[str, str]:
    """The service's environment with every service hostname turned into 127.0.0.1."""
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    local = {}
    for key, value in environment.items():
        value = "" if value is None else str(value)
        if key.endswith("_HOST") and value in hosts:
            value = "127.0.0.1"
        else:
            found = _URL_HOST.match(value)
            if found and found.group(2) in hosts:
                value = f"{found.group(1)}127.0.0.1{found.group(3)}"
        local[key] = value
    return local


def remap_ports(values, ports: dict[int, int]):
    """Each known container port (as an argument, or after a colon in a URL) -> its local
    replacement; works on a list of arguments or a dict of environment values."""
    def one(text: str) -> str:
        for old, new in ports.items():
            if text == str(old):
                return str(new)
            text = re.sub(rf":{old}(?=/|$)", f":{new}", text)
        return text
    if isinstance(values, dict):
        return {key: one(value) for key, value in values.items()}
    return [one(value) for value in values]
