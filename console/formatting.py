"""How the console writes times, rule types and severities for people. Pure functions."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

SEVERITY_COLOURS = {5: "red", 4: "orange", 3: "yellow", 2: "blue", 1: "gray"}


def parse_time(value: str | None) -> datetime | None:
    """A timestamp from the API's JSON (ISO 8601 with its offset), or None."""
    return datetime.fromisoformat(value) if value else None


def age(since: datetime | None, now: datetime) -> str:
    """How long ago `since` was, to the second under an hour: '45 s', '3 min 12 s', '2 h 5 min'."""
    if since is None:
        return "-"
    seconds = max(0, int((now - since).total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def left(until: datetime | None, now: datetime) -> str:
    """Time left before `until`: '4 min 10 s', or 'expired'."""
    if until is None:
        return "-"
    if until <= now:
        return "expired"
    return age(now, until)


# Every character Markdown (and Streamlit's own :colour[...] and $math$) gives a meaning.
_MARKDOWN = set("\\`*_{}[]()<>#+-.!|:$~&\"'")


def plain(text) -> str:
    """Event fields come from cameras and other systems: in Markdown they are text only,
    every meaningful character escaped (never bold, links, HTML or colour directives)."""
    return "".join("\\" + c if c in _MARKDOWN else c for c in str(text))


def frame_link(reference: str, template: str) -> str:
    """The frame reference as Markdown: a link when FRAME_URL_TEMPLATE is set."""
    if not template:
        return plain(reference)
    url = template.replace("{frame_reference}", quote(str(reference), safe=""))
    return f"[{plain(reference)}]({url.replace(')', '%29')})"


def rule_name(rule_type: str) -> str:
    """'motion_detection' -> 'Motion detection'."""
    text = rule_type.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def severity_badge(severity: int) -> str:
    """A coloured Markdown badge, e.g. ':red-badge[Severity 5]'."""
    return f":{SEVERITY_COLOURS.get(severity, 'gray')}-badge[Severity {severity}]"
