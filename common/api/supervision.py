"""Supervision endpoints (DESIGN.md "Supervision"): release and move work, the stories of
assignments and events, a region's audit trail (JSON or CSV) and its metrics.

A supervisor reads and acts within their own region only; an operator may release their
own work. Each route validates, authorises through its service, and calls it.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BeforeValidator

from common.adapters import broker
from common.adapters.supervision_db import HISTORY_COLUMNS
from common.api.deps import Conn, CurrentUser, Res
from common.api.responses import codes
from common.api.schemas import MAX_BIGINT, MAX_INT, Assignment, EventRegion
from common.api.supervision_schemas import (
    HistoryPage,
    HistoryRow,
    MoveRequest,
    RegionMetrics,
    RegionNow,
)
from common.services import analytics, supervision

router = APIRouter()

AssignmentId = Annotated[int, Path(ge=1, le=MAX_BIGINT)]
Region = Annotated[EventRegion, Path()]
MAX_SPAN = timedelta(days=31)
# A page's cursor: "<microseconds since 1970 of the last row>_<its history id>". Every string
# the pattern admits is a cursor the API can read (16 digits of microseconds stay < 2287).
CURSOR_PATTERN = r"^\d{1,16}_\d{1,18}$"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _iso_only(value):
    """The schema says an ISO 8601 date-time; pydantic alone would also read a bare number
    as seconds since 1970."""
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+(\.\d*)?\s*", value):
        raise ValueError("must be an ISO 8601 date-time, e.g. 2026-01-31T08:00:00Z")
    return value


IsoTime = Annotated[datetime, BeforeValidator(_iso_only)]
CSV_PAGE = 5000


@router.post("/assignments/{assignment_id}/release", response_model=Assignment,
             tags=["supervision"], responses=codes(401, 403, 404, 409, 422, 503))
def release(assignment_id: AssignmentId, res: Res, conn: Conn, me: CurrentUser):
    """Give live work back to the waiting set (own work, or any of a supervisor's region)."""
    return supervision.release(conn, res.presence, res.settings, assignment_id, me,
                               backfill=res.backfill.request)


@router.post("/assignments/{assignment_id}/move", response_model=Assignment,
             tags=["supervision"], responses=codes(400, 401, 403, 404, 409, 413, 422, 503))
def move(assignment_id: AssignmentId, body: MoveRequest, res: Res, conn: Conn,
         me: CurrentUser):
    """Move live work to an available, present operator of the event's region (cap kept);
    answers the new assignment."""
    return supervision.move(conn, res.presence, res.settings, assignment_id, body.user_id, me,
                            backfill=res.backfill.request)


@router.get("/assignments/{assignment_id}/history", response_model=list[HistoryRow],
            tags=["supervision"], responses=codes(304, 401, 403, 404, 422, 503))
def assignment_history(assignment_id: AssignmentId, conn: Conn, me: CurrentUser):
    """Every change of one assignment, oldest first."""
    return supervision.assignment_story(conn, assignment_id, me)


@router.get("/events/{event_id}/history", response_model=list[HistoryRow],
            tags=["supervision"], responses=codes(304, 401, 403, 404, 422, 503))
def event_history(event_id: UUID, conn: Conn, me: CurrentUser):
    """An event's whole story across its assignments, oldest first."""
    return supervision.event_story(conn, event_id, me)


@router.get("/regions/{region}/history", response_model=HistoryPage, tags=["supervision"],
            responses=codes(304, 401, 403, 422, 503) | {
                200: {"content": {"text/csv": {}},
                      "description": "JSON page; with Accept: text/csv every row as CSV"}})
def region_history(region: Region, res: Res, conn: Conn, me: CurrentUser,
                   start: Annotated[IsoTime | None, Query(alias="from")] = None,
                   end: Annotated[IsoTime | None, Query(alias="to")] = None,
                   user_id: Annotated[int | None, Query(ge=1, le=MAX_INT)] = None,
                   limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                   cursor: Annotated[str | None, Query(pattern=CURSOR_PATTERN)] = None,
                   accept: Annotated[str, Header()] = "application/json"):
    """The region's audit trail, newest first, `limit` rows a page (`next_cursor` for the
    next); `Accept: text/csv` streams every row of the range instead."""
    start, end = _window(start, end)
    after = _parse_cursor(cursor)
    if "text/csv" in accept:
        supervision.region_history(conn, me, region, start, end, user_id, 1, after)
        return StreamingResponse(
            _csv_rows(res, me, region, start, end, user_id, after), media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="history-{region}.csv"'})
    rows = supervision.region_history(conn, me, region, start, end, user_id, limit, after)
    last = rows[-1] if len(rows) == limit else None
    return {"items": rows,
            "next_cursor": _cursor(last) if last else None}


@router.get("/regions/{region}/metrics", response_model=RegionMetrics, tags=["supervision"],
            responses=codes(304, 401, 403, 422, 503))
def region_metrics(region: Region, res: Res, conn: Conn, me: CurrentUser,
                   start: Annotated[IsoTime | None, Query(alias="from")] = None,
                   end: Annotated[IsoTime | None, Query(alias="to")] = None):
    """Response times (p50/p95 per severity), outcomes and reasons, releases, breaches of
    RESPONSE_TARGET_MINUTES, per-minute series and rates; default the last hour."""
    start, end = _window(start, end)
    return analytics.region_metrics(conn, res.settings, me, region, start, end)


@router.get("/regions/{region}/now", response_model=RegionNow, tags=["supervision"],
            responses=codes(304, 401, 403, 422, 503))
def region_now(region: Region, request: Request, res: Res, conn: Conn, me: CurrentUser):
    """The region this moment: waiting events and the oldest wait, live assignments, the
    operators' last activity; and the depths of the queues and dead-letter queues."""
    now = analytics.region_now(conn, res.settings, me, region)
    return now | {"queues": _queue_depths(request, res)}


def _queue_depths(request: Request, res) -> list[dict]:
    """Message counts of the three queues and their `.dlq`, from the reading GET /metrics
    keeps (common/api/metrics.py: one passive declare per queue on a kept channel, shared
    by every caller for METRICS_CACHE_SECONDS); null for a queue not read."""
    snapshot = request.app.state.system_metrics.read(res.pool, res.presence.client)
    found = {sample.labels["queue"]: int(sample.value)
             for family in snapshot.families if family.name == "assignment_queue_messages"
             for sample in family.samples}
    return [{"queue": name, "messages": found.get(name)}
            for base in broker.QUEUES for name in (base, broker.dlq_name(base))]


def _window(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """[from, to) in UTC: default the hour before now. A window that ends before it starts
    holds nothing (an empty answer, not an error: the request is well formed); one longer
    than MAX_SPAN is cut to the MAX_SPAN before `to`, and the metrics answer says which
    window it covered."""
    end = _utc(end) if end else datetime.now(UTC)
    start = _utc(start) if start else end - timedelta(hours=1)
    start = max(start, end - MAX_SPAN)
    return min(start, end), end


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _cursor(row: dict) -> str:
    return f"{(row['at'] - EPOCH) // timedelta(microseconds=1)}_{row['id']}"


def _parse_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    """(time, id) of the last row of the page before; the query's pattern admits only
    cursors that parse."""
    if not cursor:
        return None
    micros, _, row_id = cursor.partition("_")
    return EPOCH + timedelta(microseconds=int(micros)), int(row_id)


def _csv_rows(res, me: dict, region: str, start: datetime, end: datetime,
              user_id: int | None, after) -> Iterator[str]:
    """The CSV, a page at a time on a connection of its own (the request's is returned
    before the body streams)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HISTORY_COLUMNS)
    while True:
        with res.pool.connection(timeout=5) as conn:
            rows = supervision.region_history(conn, me, region, start, end, user_id,
                                              CSV_PAGE, after)
        for row in rows:
            writer.writerow([_cell(row[c]) for c in HISTORY_COLUMNS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < CSV_PAGE:
            return
        after = (rows[-1]["at"], rows[-1]["id"])


def _cell(value) -> str:
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, datetime) else str(value)
