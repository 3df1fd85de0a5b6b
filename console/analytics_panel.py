"""The supervisor's numbers over a window (the last hour, or today): response-target
breaches first, time to assign and to decide (p50/p95 per severity), decisions by outcome
and reason, releases by reason, and charts over time, all from GET /regions/{r}/metrics
shaped with pandas.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from console import state
from console.formatting import rule_name

REFRESH_SECONDS = 15
WINDOWS = ("Last hour", "Today")


def render(region: str) -> None:
    st.radio("Window", WINDOWS, key="window", horizontal=True)
    _panel(region)


def window(choice: str, now: datetime) -> tuple[str, str]:
    """ISO [from, to) for a window name."""
    start = (now - timedelta(hours=1) if choice == "Last hour"
             else now.replace(hour=0, minute=0, second=0, microsecond=0))
    return start.isoformat(), now.isoformat()


@st.fragment(run_every=REFRESH_SECONDS)
def _panel(region: str) -> None:
    choice = st.session_state.get("window", WINDOWS[0])
    data = state.fetch(state.client().metrics, region, *window(choice, datetime.now(UTC)),
                       part=f"Numbers ({choice.lower()})")
    if data is None:
        return
    targets = ", ".join(f"severity {s}: {m:g} min"
                        for s, m in data["response_target_minutes"].items())
    st.markdown(f"#### {choice}: {data['breach_count']} event(s) past their response target")
    st.caption(f"Targets: {targets}.")
    if data["breaches"]:
        st.dataframe(breach_frame(data["breaches"]), hide_index=True)
    times, outcomes, releases = st.columns([3, 2, 2])
    times.markdown("**Response times (seconds)**")
    times.dataframe(times_frame(data), hide_index=True)
    outcomes.markdown("**Decisions**")
    outcomes.dataframe(pd.DataFrame(data["decisions"], columns=["outcome", "reason", "count"])
                       .rename(columns=str.capitalize).fillna("-"), hide_index=True)
    releases.markdown("**Releases**")
    releases.dataframe(pd.DataFrame(data["releases"], columns=["reason", "count"])
                       .rename(columns=str.capitalize), hide_index=True)
    _charts(data)


def breach_frame(breaches: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(breaches)
    frame["Over by (min)"] = (frame["over_seconds"] / 60).round(1)
    frame["Rule"] = frame["rule_type"].map(rule_name)
    frame["Outcome"] = frame["outcome"].fillna("undecided")
    return frame.rename(columns={"severity": "Severity", "camera_id": "Camera",
                                 "location": "Location", "event_id": "Event"})[
        ["Severity", "Over by (min)", "Outcome", "Rule", "Location", "Camera", "Event"]]


def times_frame(data: dict) -> pd.DataFrame:
    """p50 and p95 of time to assign and time to decide, one row per severity."""
    columns = ["severity", "count", "p50_seconds", "p95_seconds"]
    assign = pd.DataFrame(data["time_to_assign"], columns=columns).set_index("severity")
    decide = pd.DataFrame(data["time_to_decide"], columns=columns).set_index("severity")
    frame = assign.join(decide, how="outer", lsuffix="_assign", rsuffix="_decide")
    frame = frame.reindex([5, 4, 3, 2, 1]).round(1)
    frame.columns = ["Assigned", "Assign p50", "Assign p95", "Decided", "Decide p50",
                     "Decide p95"]
    return frame.fillna(0).reset_index(names="Severity")


def per_minute(rows: list[dict], column: str) -> pd.DataFrame:
    """A wide frame: one row per minute, one column per `column` value, zeros filled."""
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows)
    frame["minute"] = pd.to_datetime(frame["minute"], utc=True)
    return frame.pivot_table(index="minute", columns=column, values="count",
                             aggfunc="sum", fill_value=0)


def _charts(data: dict) -> None:
    events, decisions = st.columns(2)
    events.markdown("**Events per minute, by severity**")
    frame = per_minute(data["events_per_minute"], "severity")
    if frame.empty:
        events.caption("No events in this window.")
    else:
        events.bar_chart(frame.rename(columns=lambda s: f"severity {s}"), height=220)
    decisions.markdown("**Decisions per minute**")
    frame = per_minute(data["decisions_per_minute"], "outcome")
    if frame.empty:
        decisions.caption("No decisions in this window.")
    else:
        decisions.bar_chart(frame, height=220)
    rules, cameras = st.columns(2)
    for where, title, rows in ((rules, "rule type", data["by_rule_type"]),
                               (cameras, "camera", data["by_camera"])):
        where.markdown(f"**Approval and false-alarm rates per {title}**")
        if not rows:
            where.caption("No decisions in this window.")
            continue
        rates = pd.DataFrame(rows).set_index("key")[["approval_rate", "false_alarm_rate"]]
        where.bar_chart(rates.rename(columns={"approval_rate": "approved",
                                              "false_alarm_rate": "false alarm"}),
                        height=220, stack=False)
