"""The console in a real browser (Debian's chromium driven by Playwright), against the
API, an assignment consumer and `streamlit run console/app.py`, all started here.

An operator works a short shift: new work arrives without a reload, they approve, reject
with a reason and release. A supervisor sees the numbers, moves an item to another
operator, releases one and downloads the audit CSV, whose rows match assignment_history.
Screenshots of both pages go to docs/screenshots/ for people to look at.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests import servers
from tests.integration.supervision_helpers import NINA, add_second_us_operator
from tests.integration.waiting import add_waiting_events, query
from tests.processes import ROOT, eventually, free_port, running, serving_api, stop

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/lib/chromium/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = ROOT / "docs" / "screenshots"
JOHN = 1


@contextlib.contextmanager
def serving_console(settings, api_url: str, logs):
    """`streamlit run console/app.py` on a free port, talking to `api_url`; yields its URL."""
    port = free_port()
    env = servers.settings_env(settings) | {"API_URL": api_url, "PYTHONPATH": str(ROOT),
                                            "HOME": os.environ.get("HOME", "/tmp")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "console/app.py", "--server.port",
         str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--client.toolbarMode", "minimal",
         "--server.address", "127.0.0.1"],
        cwd=ROOT, env=env, stdout=logs, stderr=logs)
    url = f"http://127.0.0.1:{port}"
    try:
        eventually(lambda: _healthy(url), timeout=60, message="the console answers")
        yield url
    finally:
        stop(proc)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/_stcore/health", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def stack(settings, tmp_path):
    """API, one assignment consumer (sweeping waiting work every second) and the console."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install chromium` (.ci/run does it)")
    with (tmp_path / "stack.log").open("wb") as logs, \
            serving_api(settings, logs) as api, \
            running(settings, "assignment", logs=logs, BACKFILL_SWEEP_SECONDS=1), \
            serving_console(settings, api, logs) as console:
        yield api, console


@pytest.fixture
def browser():
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


def log_in(page, console: str, username: str) -> None:
    page.set_default_timeout(60_000)
    page.goto(console)
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill("pass123")
    page.get_by_role("button", name="Log in").click()


def persist(act, done, tries: int = 3) -> None:
    """Do what a person does when a click did not take: look, and do it again.

    The page's panels refresh every few seconds; on a loaded machine a click or a choice can
    land while a panel is being redrawn and be lost. `act` names its item by assignment id
    (the widgets' `st-key-...` classes), so a second try can never touch another item: once
    the first try has taken, the item is gone and the try fails to find it."""
    for attempt in range(1, tries + 1):
        try:
            act()
        except playwright_api.Error:
            if done() or attempt == tries:
                assert done(), "the action never took"
                return
            continue
        try:
            eventually(done, timeout=30)
            return
        except AssertionError:
            if attempt == tries:
                raise


def click(page, key: str) -> None:
    """Click the button whose Streamlit key is `key` (e.g. approve-12)."""
    page.locator(f".st-key-{key} button").first.click(timeout=15_000)


def pick(page, key: str, option: str) -> None:
    """Choose `option` in the radio group whose Streamlit key is `key` (e.g. reason-12)."""
    page.locator(f".st-key-{key}").get_by_text(option, exact=True).click(timeout=15_000)


def live(settings, user_id: int) -> list[int]:
    return [r["assignment_id"] for r in query(
        settings, "SELECT a.assignment_id FROM assignments a JOIN events e USING (event_id) "
        "WHERE a.user_id = %s AND a.status = 'pending' AND NOT a.deleted "
        "ORDER BY e.severity DESC, a.created_at", [user_id])]


def row(settings, assignment_id: int) -> dict:
    return query(settings, "SELECT * FROM assignments WHERE assignment_id = %s",
                 [assignment_id])[0]


def test_an_operator_and_a_supervisor_work_a_shift_in_the_browser(stack, browser, settings):
    api, console = stack
    expect = playwright_api.expect
    add_second_us_operator(settings)
    operator = browser.new_page(viewport={"width": 1366, "height": 900})
    log_in(operator, console, "john.smith")
    expect(operator.get_by_text("Your queue (0)")).to_be_visible(timeout=30_000)

    # New work arrives in the open page, no reload.
    add_waiting_events(settings, 1, region="NA", severity=5)
    add_waiting_events(settings, 2, region="NA", severity=3)
    expect(operator.get_by_text("Your queue (3)")).to_be_visible(timeout=30_000)
    first, second, third = live(settings, JOHN)

    persist(lambda: click(operator, f"approve-{first}"),
            lambda: row(settings, first)["status"] == "approved")
    expect(operator.get_by_text("Your queue (2)")).to_be_visible(timeout=30_000)

    def reject_as_false_alarm():
        pick(operator, f"reason-{second}", "False alarm")
        click(operator, f"reject-{second}")

    persist(reject_as_false_alarm, lambda: row(settings, second)["status"] == "rejected")
    assert row(settings, second)["decision_reason"] == "false_alarm"
    expect(operator.get_by_text("Your queue (1)")).to_be_visible(timeout=30_000)
    operator.wait_for_timeout(1000)
    operator.screenshot(path=str(SCREENSHOTS / "operator.png"), full_page=True)

    persist(lambda: click(operator, f"release-{third}"),
            lambda: row(settings, third)["release_reason"] == "released_by_operator")

    # A second operator logs in; more work for John; the supervisor steps in.
    with httpx.Client(base_url=api) as http:
        assert http.post("/auth/login", json={"username": "nina.park",
                                              "password": "pass123"}).status_code == 200
    add_waiting_events(settings, 3, region="NA", severity=4)
    eventually(lambda: len(live(settings, JOHN)) >= 2, timeout=30, message="John has work")
    supervisor = browser.new_page(viewport={"width": 1366, "height": 2100},
                                  accept_downloads=True)
    log_in(supervisor, console, "sarah.connor")
    expect(supervisor.get_by_text("Region NA")).to_be_visible(timeout=30_000)
    expect(supervisor.get_by_role("button", name="Move").first).to_be_visible(timeout=30_000)
    johns = live(settings, JOHN)
    def move_to_nina():
        pick(supervisor, f"move-to-{johns[0]}", "Nina Park")
        click(supervisor, f"move-{johns[0]}")

    persist(move_to_nina, lambda: row(settings, johns[0])["release_reason"] == "moved")
    assert query(settings, "SELECT user_id FROM assignments WHERE event_id = %s AND "
                 "status = 'pending' AND NOT deleted",
                 [row(settings, johns[0])["event_id"]])[0]["user_id"] == NINA
    expect(supervisor.get_by_text("Moved to user").first).to_be_visible(timeout=30_000)
    persist(lambda: click(supervisor, f"release-{johns[1]}"),
            lambda: row(settings, johns[1])["release_reason"] == "released_by_supervisor")
    supervisor.wait_for_timeout(2000)  # let the refreshed panels settle for the picture
    supervisor.screenshot(path=str(SCREENSHOTS / "supervisor.png"), full_page=True)

    supervisor.get_by_role("link", name="Audit trail").click()
    button = supervisor.get_by_role("button", name="Download CSV")
    expect(button).to_be_visible(timeout=30_000)
    supervisor.screenshot(path=str(SCREENSHOTS / "audit.png"), full_page=True)
    with supervisor.expect_download() as download:
        button.click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    table = query(settings, "SELECT * FROM assignment_history ORDER BY at DESC, id DESC")
    assert [int(r["id"]) for r in rows] == [r["id"] for r in table]
    assert [(r["new_state"], r["reason"]) for r in rows] == [
        (r["new_state"], r["reason"] or "") for r in table]
