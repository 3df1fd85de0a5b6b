"""A supervisor's page: their region at a glance, read-only, refreshed every few seconds.

Reads GET /regions/{region}/overview. Response times, reject reasons and actions on
operators' work come with the full supervisor dashboard (a later issue).
"""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from common.domain.routing import served_region
from console import state
from console.formatting import age, parse_time

REFRESH_SECONDS = 10


def render(user: dict) -> None:
    _overview(served_region(user["region"]))


@st.fragment(run_every=REFRESH_SECONDS)
def _overview(region: str) -> None:
    if state.user() is None:
        st.rerun(scope="app")
    state.keep_alive()
    data = state.fetch(state.client().overview, region)
    if data is None:
        return
    now = datetime.now(UTC)
    st.subheader(f"Region {region}")
    _totals(data)
    st.markdown("**Operators**")
    st.dataframe(_operator_rows(data["operators"]), hide_index=True)
    st.markdown("**Waiting events by severity**")
    st.dataframe(_waiting_rows(data["waiting"], now), hide_index=True)
    st.caption(f"Updated {now:%H:%M:%S} UTC, every {REFRESH_SECONDS} s.")


def _totals(data: dict) -> None:
    operators = data["operators"]
    waiting, present, available, live = st.columns(4)
    waiting.metric("Waiting events", data["waiting_total"])
    present.metric("Operators logged in", sum(o["present"] for o in operators))
    available.metric("Available for work",
                     sum(o["present"] and o["available"] for o in operators))
    live.metric("Open assignments", sum(o["live"] for o in operators))


def _operator_rows(operators: list[dict]) -> list[dict]:
    return [{"Name": o["name"], "Username": o["username"],
             "Logged in": "yes" if o["present"] else "no",
             "Available": "yes" if o["available"] else "no",
             "Open assignments": o["live"]} for o in operators]


def _waiting_rows(waiting: list[dict], now: datetime) -> list[dict]:
    return [{"Severity": w["severity"], "Waiting": w["count"],
             "Longest wait": age(parse_time(w["oldest_waiting_since"]), now)}
            for w in waiting]
