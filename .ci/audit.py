"""Audit the locked dependencies for known vulnerabilities; exit 1 if any is found.

Run by `.ci/run` and `make audit`. First `pip-audit` over `uv export --frozen` (PyPI's
per-version advisories). Where pip-audit could not get data for a package (on this network
PyPI's per-version JSON answers 404 and OSV does not answer), the package is looked up in
PyPI's project JSON, whose `vulnerabilities` describe the LATEST release only: a locked
version that is the latest is audited that way; any other is reported as NOT audited. The
output says how many packages were audited and names those that were not; it never claims
an audit it could not do. AUDIT_REQUIRED=1 makes "nothing could be audited" a failure too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
PIP_AUDIT = ROOT / ".venv" / "bin" / "pip-audit"
# Bounds, so a network that drops packets costs CI minutes, not hours.
PIP_AUDIT_SECONDS = 600


def locked_requirements() -> str:
    return subprocess.run(
        ["python3", "-m", "uv", "export", "--frozen", "--no-hashes", "--no-emit-project"],
        cwd=ROOT, capture_output=True, text=True, check=True).stdout


def pip_audit(requirements: str) -> list[dict]:
    """pip-audit's per-package answers: {name, version, vulns} or {name, skip_reason}."""
    try:
        return _pip_audit(requirements)
    except subprocess.TimeoutExpired:
        print(f"pip-audit did not finish within {PIP_AUDIT_SECONDS} s")
        return [{"name": name, "version": version, "skip_reason": "timeout"}
                for name, version in pinned(requirements).items()]


def _pip_audit(requirements: str) -> list[dict]:
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as file:
        file.write(requirements)
        file.flush()
        result = subprocess.run(
            [str(PIP_AUDIT), "-r", file.name, "--disable-pip", "--no-deps", "-f", "json",
             "--progress-spinner", "off", "--timeout", "20"],
            capture_output=True, text=True, timeout=PIP_AUDIT_SECONDS)
    try:
        return json.loads(result.stdout)["dependencies"]
    except (json.JSONDecodeError, KeyError):
        print(f"pip-audit gave no report (exit {result.returncode}): "
              f"{result.stderr.strip()[-500:]}")
        return [{"name": name, "version": version, "skip_reason": "no report"}
                for name, version in pinned(requirements).items()]


def latest_release_vulns(name: str, version: str) -> list[dict] | None:
    """Known vulnerabilities of name==version from PyPI's project JSON, or None when that
    cannot tell (unreachable, or `version` is not the latest release)."""
    try:
        answer = httpx.get(f"https://pypi.org/pypi/{name}/json", timeout=20)
        answer.raise_for_status()
        data = answer.json()
    except (httpx.HTTPError, ValueError):
        return None
    if data.get("info", {}).get("version") != version:
        return None
    return [v for v in data.get("vulnerabilities") or [] if not v.get("withdrawn")]


def pinned(requirements: str) -> dict[str, str]:
    """name -> version of each `name==version` line (names normalised as PyPI does)."""
    versions = {}
    for line in requirements.splitlines():
        requirement = line.split(";")[0].strip()
        if "==" in requirement and not requirement.startswith("#"):
            name, version = requirement.split("==", 1)
            versions[_normal(name)] = version.strip()
    return versions


def _normal(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def _pypi_answers() -> bool:
    try:
        return httpx.get("https://pypi.org/pypi/pip/json", timeout=10).status_code == 200
    except httpx.HTTPError:
        return False


def from_project_json(unknown: list[dict]) -> list[list[dict] | None]:
    """For each package pip-audit skipped: its known vulnerabilities, or None (no data)."""
    if not unknown:
        return []
    if not _pypi_answers():
        print("PyPI does not answer: the packages pip-audit skipped cannot be audited")
        return [None] * len(unknown)
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda d: latest_release_vulns(d["name"], d["version"]),
                             unknown))


def main() -> int:
    requirements = locked_requirements()
    versions = pinned(requirements)
    report = pip_audit(requirements)
    found, audited, not_audited = [], 0, []
    unknown = [dep for dep in report if "skip_reason" in dep]
    for dep in report:
        dep.setdefault("version", versions.get(_normal(dep["name"]), "?"))
        if "skip_reason" not in dep:
            audited += 1
            found += [(dep["name"], dep["version"], v["id"], v.get("fix_versions"))
                      for v in dep.get("vulns", [])]
    for dep, vulns in zip(unknown, from_project_json(unknown), strict=True):
        if vulns is None:
            not_audited.append(f"{dep['name']}=={dep['version']}")
        else:
            audited += 1
            found += [(dep["name"], dep["version"], v["id"], v.get("fixed_in")) for v in vulns]
    return verdict(found, audited, len(report), not_audited)


def verdict(found: list[tuple], audited: int, total: int, not_audited: list[str]) -> int:
    """Print what was and was not audited; 1 on any known vulnerability."""
    for name, version, vuln, fixed in found:
        print(f"VULNERABLE {name}=={version}: {vuln} (fixed in {fixed or 'no release yet'})")
    print(f"dependency audit: {audited} of {total} locked packages audited, "
          f"{len(found)} known vulnerabilities")
    if not_audited:
        print("NOT AUDITED (no vulnerability data reachable for these versions): "
              + ", ".join(sorted(not_audited)))
    if found:
        return 1
    if not audited and os.environ.get("AUDIT_REQUIRED") == "1":
        print("dependency audit: nothing could be audited and AUDIT_REQUIRED=1")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
