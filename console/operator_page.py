"""An operator's page: availability, and their live assignments to approve or reject.

The queue is a fragment refreshed every REFRESH_SECONDS, which also keeps the session
alive (state.keep_alive), so both happen only while the page is open.
"""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from console import state
from console.formatting import age, parse_time, rule_name, severity_badge

REFRESH_SECONDS = 10
APPROVED, REJECTED = "approved", "rejected"


def render(user: dict) -> None:
    _availability(user)
    _queue(user)


def _availability(user: dict) -> None:
    """A toggle showing the availability the API last reported; switching it asks the API."""
    # Set before the widget exists in this run, so it follows the API's answer (and snaps
    # back when a switch was refused).
    st.session_state["available_toggle"] = st.session_state.get("available", False)
    st.toggle("Available for new work", key="available_toggle", on_change=_switch,
              args=(user["id"],))
    if st.session_state["available_toggle"]:
        st.caption("New events come to you as they arrive, most severe first.")
    else:
        st.caption("No new events come to you; what you hold stays yours.")


def _switch(user_id: int) -> None:
    wanted = st.session_state["available_toggle"]
    answer = state.act(state.client().set_available, user_id, wanted)
    if answer is not None:
        st.session_state["available"] = answer["available"]


@st.fragment(run_every=REFRESH_SECONDS)
def _queue(user: dict) -> None:
    if state.user() is None:
        st.rerun(scope="app")
    state.show_notices()
    state.keep_alive()
    items = state.fetch(state.client().assignments, user["id"])
    if items is None:
        return
    st.subheader(f"Your queue ({len(items)})")
    if not items:
        st.info("Nothing to review right now. New events appear here as they are assigned "
                "to you.")
    now = datetime.now(UTC)
    for item in items:
        _item(item, now)
    st.caption(f"Updated {now:%H:%M:%S} UTC, every {REFRESH_SECONDS} s.")


def _item(item: dict, now: datetime) -> None:
    """One assignment: what, where, how old; a reason field and the two decisions."""
    key = item["assignment_id"]
    what = f"{rule_name(item['rule_type'])} at {item['location']}"
    with st.container(border=True):
        info, reason, approve, reject = st.columns([5, 3, 1, 1], vertical_alignment="center")
        info.markdown(f"{severity_badge(item['severity'])} **{what}** · {item['region']}")
        info.caption(f"Camera {item['camera_id']} · device {item['device_id']} · "
                     f"assigned {age(parse_time(item['created_at']), now)} ago")
        reason.text_input("Reason", key=f"reason-{key}", max_chars=500,
                          placeholder="Reason to reject (optional)",
                          label_visibility="collapsed")
        approve.button("Approve", key=f"approve-{key}", type="primary",
                       on_click=_decide, args=(key, APPROVED, what))
        reject.button("Reject", key=f"reject-{key}", on_click=_decide,
                      args=(key, REJECTED, what))


def _decide(assignment_id: int, status: str, what: str) -> None:
    reason = None
    if status == REJECTED:
        reason = st.session_state.get(f"reason-{assignment_id}", "").strip() or None
    if state.act(state.client().decide, assignment_id, status, reason) is not None:
        state.notify("success", f"{status.capitalize()}: {what}.")
