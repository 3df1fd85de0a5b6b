"""Details of what a scheduled job did, read back for its Prefect report (flows/reports.py).

The services return counts; these queries add the breakdown a person wants to see in the
UI. Read-only, after the job's own transactions committed.
"""

from __future__ import annotations

from datetime import datetime

import psycopg


def database_now(conn: psycopg.Connection) -> datetime:
    """The database's clock: a job notes it before its work, to read its own rows after."""
    return conn.execute("SELECT clock_timestamp() AS now").fetchone()["now"]


def released_per_operator(conn: psycopg.Connection, actor: str, since: datetime) -> list[tuple]:
    """(user id, username, released) for the releases `actor` wrote since `since`."""
    rows = conn.execute(
        "SELECT h.user_id, u.username, count(*) AS released FROM assignment_history h"
        " JOIN users u ON u.id = h.user_id"
        " WHERE h.actor = %s AND h.new_state = 'released' AND h.at >= %s"
        " GROUP BY h.user_id, u.username ORDER BY released DESC, h.user_id",
        [actor, since],
    ).fetchall()
    return [(r["user_id"], r["username"], r["released"]) for r in rows]
