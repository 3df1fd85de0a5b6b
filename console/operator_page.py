"""An operator's page: their live assignments, most severe then oldest, to approve, reject
with a reason, or release; their count against the cap and their availability.

One fragment refreshed every REFRESH_SECONDS draws it all, availability switch included
(new work and an availability changed elsewhere show within that; an unchanged read is a
304), and keeps the session alive (state.keep_alive), so both happen only while the page
is open.
Event fields are shown as text only (formatting.plain), never as Markdown or HTML.
"""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from common.settings import load_settings
from console import state
from console.formatting import age, frame_link, left, parse_time, plain, rule_name, severity_badge

REFRESH_SECONDS = 2
APPROVED, REJECTED = "approved", "rejected"
REASONS = {"false_alarm": "False alarm", "duplicate": "Duplicate",
           "handled_on_site": "Handled on site", "other": "Other (say why)"}


def render() -> None:
    """The Queue page (console/app.py); operators only."""
    me = state.user()
    if me is None or me["role"] != "operator":
        st.error("This page is for operators.")
        return
    _queue(me)


@st.fragment(run_every=REFRESH_SECONDS)
def _queue(user: dict) -> None:
    if state.user() is None:
        st.rerun(scope="app")
    state.show_notices()
    state.keep_alive()
    # Read each refresh (a 304 while unchanged), so a switch made elsewhere (another tab,
    # a supervisor, logout of another session) shows here within REFRESH_SECONDS.
    available = state.fetch(state.client().availability, user["id"], part="Availability")
    if available is not None:
        st.session_state["available"] = available
    items = state.fetch(state.client().assignments, user["id"], part="Your queue")
    cap = user.get("max_assignments")
    head, toggle = st.columns([3, 2], vertical_alignment="center")
    _availability(toggle, user)
    if items is None:
        return
    head.subheader(f"Your queue ({len(items)})")
    head.caption(f"{len(items)} / {cap} open assignments" if cap else "")
    if not items:
        st.info("Nothing to review right now. New events appear here as they are assigned "
                "to you.")
    now = datetime.now(UTC)
    template = load_settings().FRAME_URL_TEMPLATE
    for item in items:
        _item(item, now, template)
    st.caption(f"Updated {now:%H:%M:%S} UTC, every {REFRESH_SECONDS} s.")


def _availability(where, user: dict) -> None:
    """A toggle showing the availability the API last reported; switching it asks the API."""
    # Set before the widget exists in this run, so it follows the API's answer (and snaps
    # back when a switch was refused), also when it changed elsewhere.
    st.session_state["available_toggle"] = st.session_state.get("available", False)
    where.toggle("Available for new work", key="available_toggle", on_change=_switch,
                 args=(user["id"],))
    if st.session_state["available_toggle"]:
        where.caption("New events come to you as they arrive, most severe first.")
    else:
        where.caption("No new events come to you; what you hold stays yours.")


def _switch(user_id: int) -> None:
    wanted = st.session_state["available_toggle"]
    answer = state.act(state.client().set_available, user_id, wanted)
    if answer is not None:
        st.session_state["available"] = answer["available"]


def _item(item: dict, now: datetime, template: str) -> None:
    """One assignment: what, where, how old, time left; a reason and three actions."""
    key = item["assignment_id"]
    what = f"{rule_name(item['rule_type'])} at {item['location']}"
    expires = parse_time(item.get("expires_at"))
    with st.container(border=True):
        info, why, actions = st.columns([5, 3, 3], vertical_alignment="center")
        info.markdown(f"{severity_badge(item['severity'])} **{plain(what)}** · "
                      f"{plain(item['region'])}")
        info.caption(f"Camera {plain(item['camera_id'])} · device {plain(item['device_id'])}"
                     f" · frame {frame_link(item['frame_reference'], template)}")
        info.caption(f"Assigned {age(parse_time(item['created_at']), now)} ago · "
                     f"{left(expires, now)} left")
        # Radio buttons, not a drop-down: the queue redraws every few seconds, and an open
        # drop-down would close under the person's pointer.
        why.radio("Reason to reject", list(REASONS), key=f"reason-{key}", index=None,
                  format_func=REASONS.get, horizontal=True, label_visibility="collapsed")
        if st.session_state.get(f"reason-{key}") == "other":
            why.text_input("Note", key=f"note-{key}", max_chars=500,
                           placeholder="Why (required for Other)",
                           label_visibility="collapsed")
        approve, reject, release = actions.columns(3)
        approve.button("Approve", key=f"approve-{key}", type="primary",
                       on_click=_decide, args=(key, APPROVED, what))
        reject.button("Reject", key=f"reject-{key}", on_click=_decide,
                      args=(key, REJECTED, what))
        release.button("Release", key=f"release-{key}", on_click=_release, args=(key, what),
                       help="Give it back to the waiting queue for someone else")


def _decide(assignment_id: int, status: str, what: str) -> None:
    reason = note = None
    if status == REJECTED:
        reason = st.session_state.get(f"reason-{assignment_id}")
        note = (st.session_state.get(f"note-{assignment_id}") or "").strip() or None
        if reason is None:
            state.notify("warning", f"Choose a reason to reject: {plain(what)}.")
            return
        if reason == "other" and not note:
            state.notify("warning", f"Say why in the note to reject as Other: {plain(what)}.")
            return
    if state.act(state.client().decide, assignment_id, status, reason, note) is not None:
        state.notify("success", f"{status.capitalize()}: {plain(what)}.")


def _release(assignment_id: int, what: str) -> None:
    if state.act(state.client().release, assignment_id) is not None:
        state.notify("info", f"Released to the waiting queue: {plain(what)}.")
