"""A supervisor's Audit trail page: assignment_history of their region, filtered by
operator, event or time; one event's whole story; `Download CSV` of what the filters show.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from common.domain.routing import served_region
from console import state

RANGES = {"Last hour": timedelta(hours=1), "Last 24 hours": timedelta(days=1),
          "Last 7 days": timedelta(days=7), "Last 30 days": timedelta(days=30)}
COLUMNS = ["at", "event_id", "assignment_id", "user_id", "actor", "previous_state",
           "new_state", "reason"]


def render() -> None:
    """The Audit trail page (console/app.py); supervisors only."""
    me = state.user()
    if me is None or me["role"] != "supervisor":
        st.error("This page is for supervisors.")
        return
    state.show_notices()
    state.keep_alive()
    region = served_region(me["region"])
    st.subheader(f"Audit trail, region {region}")
    overview = state.fetch(state.client().overview, region, part="Operators") or {}
    operators = {o["id"]: o["name"] for o in overview.get("operators", [])}
    span, who, event = st.columns(3)
    chosen_range = span.selectbox("Time", list(RANGES), key="audit_range")
    user_id = who.selectbox("Operator", [None, *operators], key="audit_user",
                            format_func=lambda i: "Everyone" if i is None else operators[i])
    event_id = event.text_input("Event", key="audit_event", max_chars=36,
                                placeholder="An event id: its whole story").strip()
    if event_id:
        _story(event_id)
        return
    now = datetime.now(UTC)
    start, end = (now - RANGES[chosen_range]).isoformat(), now.isoformat()
    page = state.fetch(state.client().history, region, start, end, user_id, 500,
                       part="Audit trail")
    if page is None:
        return
    frame = pd.DataFrame(page["items"], columns=["id", *COLUMNS])
    st.dataframe(frame, hide_index=True)
    st.caption(f"{len(frame)} row(s), newest first"
               + (" (the newest 500; the CSV has every row)" if page["next_cursor"] else ""))
    csv = state.fetch(state.client().history_csv, region, start, end, user_id,
                      part="CSV")
    if csv is not None:
        st.download_button("Download CSV", csv, file_name=f"audit-{region}.csv",
                           mime="text/csv", key="audit_csv")


def _story(event_id: str) -> None:
    rows = state.fetch(state.client().event_history, event_id)
    if rows is None:
        return
    st.markdown(f"**Story of event `{event_id}`** ({len(rows)} change(s), oldest first)")
    st.dataframe(pd.DataFrame(rows, columns=["id", *COLUMNS]), hide_index=True)
