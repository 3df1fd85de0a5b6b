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
# The session lives SESSION_TTL (300 s) without a heartbeat; one a minute keeps it alive
# with room for a few missed beats.
HEARTBEAT_SECONDS = 60


def client() -> ApiClient:
    """An API client for this session (with its token, once logged in). Settings are read
    at every run, so API_URL is whatever the environment says now."""
    return ApiClient(load_settings().API_URL, st.session_state.get("token"))


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
    if notice:
        notify("warning", notice)


def notify(kind: str, text: str) -> None:
    """A message ('success', 'info', 'warning' or 'error') for the top of the next run."""
    st.session_state.setdefault("notices", []).append((kind, text))


def show_notices() -> None:
    """Show, once, the messages left by callbacks and earlier runs."""
    for kind, text in st.session_state.pop("notices", []):
        getattr(st, kind)(text)


def fetch(call, *args):
    """The result of an API call made while drawing the page, or None after showing why
    it failed; an ended session goes back to the login form."""
    try:
        return call(*args)
    except SessionEnded as ended:
        end(ended.message)
        st.rerun(scope="app")
    except ApiError as error:
        st.error(error.message)
        return None


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
