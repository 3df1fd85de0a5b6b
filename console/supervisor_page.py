"""A supervisor's Region page: the region now, and its operators' live work to release or
move. Response times, outcomes and charts are in console/analytics_panel.py.

Each panel is a fragment refreshed on its own; a panel whose API call fails says so and
keeps what it last showed (state.fetch), and recovers at its next refresh.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from common.domain.routing import served_region
from console import analytics_panel, state
from console.formatting import age, parse_time, plain, rule_name

NOW_SECONDS = 3


def render() -> None:
    """The Region page (console/app.py); supervisors only."""
    me = state.user()
    if me is None or me["role"] != "supervisor":
        st.error("This page is for supervisors.")
        return
    region = served_region(me["region"])
    st.subheader(f"Region {region}")
    _now(region)
    analytics_panel.render(region)
    _work(region)


@st.fragment(run_every=NOW_SECONDS)
def _now(region: str) -> None:
    if state.user() is None:
        st.rerun(scope="app")
    state.show_notices()
    state.keep_alive()
    data = state.fetch(state.client().overview, region, part="Operators")
    numbers = state.fetch(state.client().now, region, part="Now")
    if data is None or numbers is None:
        return
    now = datetime.now(UTC)
    operators = data["operators"]
    waiting, oldest, live, present, available = st.columns(5)
    waiting.metric("Waiting events", data["waiting_total"])
    oldest.metric("Oldest wait", age(parse_time(numbers["oldest_waiting_since"]), now))
    live.metric("Open assignments", numbers["live_assignments"])
    present.metric("Operators logged in", sum(o["present"] for o in operators))
    available.metric("Available for work", sum(o["present"] and o["available"]
                                               for o in operators))
    st.dataframe(_operator_rows(operators, numbers, now), hide_index=True)
    st.markdown("**Queues** (whole system: messages waiting; dead letters need a person)")
    st.dataframe(queue_frame(numbers["queues"]), hide_index=True)
    st.caption(f"Updated {now:%H:%M:%S} UTC, every {NOW_SECONDS} s.")


def queue_frame(queues: list[dict]) -> pd.DataFrame:
    """One row per work queue: its depth and its dead-letter queue's ("not read" when
    RabbitMQ did not answer)."""
    depth = {q["queue"]: q["messages"] for q in queues}
    return pd.DataFrame([{"Queue": name, "Messages": _count(depth.get(name)),
                          "Dead letters": _count(depth.get(f"{name}.dlq"))}
                         for name in depth if not name.endswith(".dlq")],
                        columns=["Queue", "Messages", "Dead letters"])


def _count(messages: int | None) -> str:
    return "not read" if messages is None else str(messages)


def _operator_rows(operators: list[dict], numbers: dict, now: datetime) -> pd.DataFrame:
    seen = {a["user_id"]: parse_time(a["last_seen_at"]) for a in numbers["activity"]}
    cap = numbers["max_assignments"]
    return pd.DataFrame([{
        "Name": o["name"], "Username": o["username"],
        "Load": f"{o['live']} / {cap}",
        "Logged in": "yes" if o["present"] else "no",
        "Available": "yes" if o["available"] else "no",
        "Last activity": (age(seen[o["id"]], now) + " ago") if seen.get(o["id"]) else "never",
    } for o in operators], columns=["Name", "Username", "Load", "Logged in", "Available",
                                    "Last activity"])


@st.fragment(run_every=NOW_SECONDS * 2)
def _work(region: str) -> None:
    """One operator's live work, each item with Release and Move (to an available,
    logged-in operator of the region)."""
    st.markdown("#### Live work")
    state.show_notices()
    data = state.fetch(state.client().overview, region, part="Live work")
    if data is None:
        return
    operators = {o["id"]: o for o in data["operators"]}
    if not operators:
        st.info("No operators in this region.")
        return
    chosen = st.selectbox("Operator", list(operators), key="work_operator",
                          format_func=lambda i: f"{operators[i]['name']} "
                                                f"({operators[i]['live']} open)")
    items = state.fetch(state.client().assignments, chosen, part=f"Work of {chosen}") or []
    if not items:
        st.caption("No open assignments.")
    targets = [i for i, o in operators.items() if o["available"] and o["present"]]
    now = datetime.now(UTC)
    for item in items:
        _work_item(item, [t for t in targets if t != chosen], operators, now)


def _work_item(item: dict, targets: list[int], operators: dict, now: datetime) -> None:
    key = item["assignment_id"]
    what = f"{rule_name(item['rule_type'])} at {item['location']}"
    with st.container(border=True):
        info, target, move, release = st.columns([5, 3, 1, 1], vertical_alignment="center")
        info.markdown(f"Severity {item['severity']} · **{plain(what)}** · camera "
                      f"{plain(item['camera_id'])} · assigned "
                      f"{age(parse_time(item['created_at']), now)} ago")
        # Radio buttons, not a drop-down: the panel redraws every few seconds, and an open
        # drop-down would close under the person's pointer.
        target.radio("Move to", targets, key=f"move-to-{key}", index=None,
                     format_func=lambda i: operators[i]["name"], horizontal=True,
                     label_visibility="collapsed")
        move.button("Move", key=f"move-{key}", on_click=_move, args=(key, what))
        release.button("Release", key=f"release-{key}", on_click=_release, args=(key, what))


def _move(assignment_id: int, what: str) -> None:
    target = st.session_state.get(f"move-to-{assignment_id}")
    if target is None:
        state.notify("warning", f"Choose who takes it first: {plain(what)}.")
        return
    if state.act(state.client().move, assignment_id, target) is not None:
        state.notify("success", f"Moved to user {target}: {plain(what)}.")


def _release(assignment_id: int, what: str) -> None:
    if state.act(state.client().release, assignment_id) is not None:
        state.notify("success", f"Released to the waiting queue: {plain(what)}.")
