"""What one browser session of the console remembers, in st.session_state.

`token` and `user` while logged in; `available` (the operator's availability as the API
last said it); `last_heartbeat` (time.monotonic() of the last session refresh); `notices`,
messages to show once at the top of the next run.
"""

from __future__ import annotations

import time

import streamlit as st

from common.settings import load_settings
from console.api_client import ApiClient, ApiError, SessionEnded

KEYS = ("token", "user", "available", "last_heartbeat")
# st.session_state[f"last-{part}"]: what a panel last showed, kept while the API is down.
# The session lives SESSION_TTL (300 s) without a heartbeat; one every 15 s keeps it
# alive and brings back, within that, an availability changed elsewhere.
# with room for a few missed beats.
HEARTBEAT_SECONDS = 15


def client() -> ApiClient:
    """This session's API client (its token once logged in), kept in the session so its
    connections are reused; a new one when API_URL or the token changed."""
    settings = load_settings()
    token = st.session_state.get("token")
    kept = st.session_state.get("api_client")
    if kept is not None and (kept.base_url, kept.token) == (settings.API_URL.rstrip("/"),
                                                            token):
        return kept
    if kept is not None:
        kept.close()
    made = ApiClient(settings.API_URL, token, settings.CONSOLE_SECRET, _browser_ip())
    st.session_state["api_client"] = made
    return made


def _browser_ip() -> str | None:
    try:
        address = st.context.ip_address
    except Exception:  # noqa: BLE001 - not every runtime (AppTest) knows the browser
        return None
    return address if isinstance(address, str) and address else None


def user() -> dict | None:
    """The logged-in user ({id, username, name, role, region}), or None."""
    return st.session_state.get("user") if st.session_state.get("token") else None


def start(login: dict) -> None:
    """Remember a successful login (operators are available from login on)."""
    st.session_state["token"] = login["token"]
    st.session_state["user"] = login["user"]
    st.session_state["available"] = login["user"]["role"] == "operator"
    st.session_state["last_heartbeat"] = time.monotonic()


def end(notice: str | None = None) -> None:
    """Forget the session (logged out, or the API said it ended)."""
    for key in KEYS:
        st.session_state.pop(key, None)
    for key in [k for k in st.session_state if str(k).startswith("last-")]:
        st.session_state.pop(key, None)
    if notice:
        notify("warning", notice)


def notify(kind: str, text: str) -> None:
    """A message ('success', 'info', 'warning' or 'error') for the top of the next run."""
    st.session_state.setdefault("notices", []).append((kind, text))


def show_notices() -> None:
    """Show, once, the messages left by callbacks and earlier runs."""
    for kind, text in st.session_state.pop("notices", []):
        getattr(st, kind)(text)


def fetch(call, *args, part: str | None = None):
    """The result of an API call made while drawing the page. When it fails, says why and
    returns what `part` (a panel's name) last showed, or None; an ended session goes back
    to the login form. The next refresh tries again, so a panel recovers by itself."""
    try:
        result = call(*args)
    except SessionEnded as ended:
        end(ended.message)
        st.rerun(scope="app")
    except ApiError as error:
        last = st.session_state.get(f"last-{part}") if part else None
        if last is not None:
            st.warning(f"{part}: {error.message} Showing what was last seen.")
        else:
            st.error(error.message)
        return last
    if part:
        st.session_state[f"last-{part}"] = result
    return result


def keep_alive() -> None:
    """Refresh the session if a heartbeat is due (the pages' refresh fragments call this,
    so it runs only while the page is open). A failed beat is retried at the next refresh."""
    if time.monotonic() - st.session_state.get("last_heartbeat", 0.0) < HEARTBEAT_SECONDS:
        return
    try:
        me = client().heartbeat()
    except SessionEnded as ended:
        end(ended.message)
        st.rerun(scope="app")
    except ApiError as error:
        st.warning(f"Could not refresh your session: {error.message}")
        return
    st.session_state["last_heartbeat"] = time.monotonic()
    st.session_state["available"] = me["available"]


def act(call, *args):
    """The result of an API call made by a button's callback, or None after leaving a
    notice saying why it failed (callbacks cannot draw; the next run shows it)."""
    try:
        return call(*args)
    except SessionEnded as ended:
        end(ended.message)
    except ApiError as error:
        notify("warning" if error.status == 409 else "error", error.message)
    return None
