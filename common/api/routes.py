"""The endpoints of DESIGN.md. Each validates, authorises and calls one service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from common.api.client_address import ClientAddress
from common.api.deps import Conn, CurrentUser, Res, Token
from common.api.responses import codes
from common.api.schemas import (
    MAX_BIGINT,
    MAX_INT,
    Assignment,
    DecisionRequest,
    EventRegion,
    Health,
    HealthDown,
    LoginRequest,
    LoginResponse,
    RegionOverview,
    SessionResponse,
    UserState,
)
from common.domain import decisions as rules
from common.services import decisions, overview, sessions
from common.services.errors import Forbidden

router = APIRouter()

UserId = Annotated[int, Path(ge=1, le=MAX_INT)]
AssignmentId = Annotated[int, Path(ge=1, le=MAX_BIGINT)]


@router.get("/health", response_model=Health, tags=["health"],
            responses={503: {"model": HealthDown,
                             "description": "a server does not answer; the body names it"}})
async def health(request: Request):
    """200 `ok` when every server answers and every long-running process beats; 200
    `degraded` when a process is stale or missing; 503 `down` naming a server that does not
    answer (DESIGN.md, Operations)."""
    code, body = await run_in_threadpool(request.app.state.health.report)
    return JSONResponse(body, status_code=code) if code != 200 else body


@router.post("/auth/login", response_model=LoginResponse, tags=["auth"],
             responses=codes(400, 401, 413, 422, 429, 503))
def login(body: LoginRequest, res: Res, conn: Conn, address: ClientAddress):
    """Start a session (SESSION_TTL); an operator becomes available and gets waiting work.

    Failed attempts are limited per (username, client address): 429 with Retry-After."""
    token, user = sessions.login(conn, res.presence, res.settings, body.username,
                                 body.password, address, backfill=res.backfill.request)
    return {"token": token, "user": user | {"max_assignments": res.settings.MAX_ASSIGNMENTS}}


@router.post("/auth/logout", status_code=204, tags=["auth"], responses=codes(401, 503))
def logout(res: Res, conn: Conn, bearer: Token) -> None:
    """End the session; if it was an operator's last live session, their pending work is
    released at once."""
    sessions.logout(conn, res.presence, res.settings, bearer, backfill=res.backfill.request)


@router.post("/auth/heartbeat", response_model=SessionResponse, tags=["auth"],
             responses=codes(401, 503))
def heartbeat(res: Res, conn: Conn, bearer: Token):
    """Refresh the session without changing availability (the console, every ~60 s)."""
    user = sessions.heartbeat(conn, res.presence, res.settings, bearer,
                              backfill=res.backfill.request)
    return {"user": user | {"max_assignments": res.settings.MAX_ASSIGNMENTS},
            "expires_in": res.settings.SESSION_TTL}


@router.post("/users/{user_id}/active", response_model=UserState, tags=["users"],
             responses=codes(401, 403, 404, 409, 422, 503))
def make_available(user_id: UserId, res: Res, conn: Conn, me: CurrentUser, bearer: Token):
    """Available for new work (and the caller's own session refreshed)."""
    target = _user_in_reach(conn, me, user_id)
    own = bearer if me["id"] == user_id else None
    return sessions.set_available(conn, res.presence, res.settings, target, True, own,
                                  backfill=res.backfill.request)


@router.get("/users/{user_id}/active", response_model=UserState, tags=["users"],
            responses=codes(304, 401, 403, 404, 422, 503))
def availability(user_id: UserId, conn: Conn, me: CurrentUser):
    """Whether the user is available for new work now, whoever switched it last (the
    console's queue polls it, so a switch made elsewhere shows within seconds)."""
    return _user_in_reach(conn, me, user_id)


@router.delete("/users/{user_id}/active", response_model=UserState, tags=["users"],
               responses=codes(401, 403, 404, 422, 503))
def make_unavailable(user_id: UserId, res: Res, conn: Conn, me: CurrentUser):
    """No new work while still logged in; current work stays theirs."""
    target = _user_in_reach(conn, me, user_id)
    return sessions.set_available(conn, res.presence, res.settings, target, False)


@router.get("/users/{user_id}/assignments", response_model=list[Assignment],
            tags=["assignments"], responses=codes(304, 401, 403, 404, 422, 503))
def user_assignments(user_id: UserId, res: Res, conn: Conn, me: CurrentUser):
    """Live assignments with their event fields, most severe first, then oldest."""
    _user_in_reach(conn, me, user_id)
    return decisions.list_assignments(conn, user_id, res.settings.ASSIGNMENT_EXPIRY_MINUTES)


@router.put("/assignments/{assignment_id}", response_model=Assignment, tags=["assignments"],
            responses=codes(400, 401, 403, 404, 409, 413, 422, 503))
def decide(assignment_id: AssignmentId, body: DecisionRequest, res: Res, conn: Conn,
           me: CurrentUser):
    """Approve or reject a pending assignment ('completed' is approved)."""
    updated = decisions.decide(conn, res.presence, res.settings, assignment_id, me,
                               body.status, body.reason, body.note,
                               backfill=res.backfill.request,
                               decided=lambda decided_id: res.fast_path.submit([decided_id]))
    return updated


@router.get("/regions/{region}/overview", response_model=RegionOverview, tags=["regions"],
            responses=codes(304, 401, 403, 422, 503))
def region_overview(region: Annotated[EventRegion, Path()], conn: Conn, me: CurrentUser):
    """The region's operators (available, live work, present) and its waiting events by
    severity; for the region's supervisors only (US supervisors for NA)."""
    return overview.region_overview(conn, me, region)


def _user_in_reach(conn, me: dict, user_id: int) -> dict:
    """The target user, if the caller may act for them (themself, or their region's
    supervisor); else NotFound or Forbidden."""
    target = decisions.get_user(conn, user_id)
    actor = rules.Actor(me["id"], me["role"], me["region"])
    if not rules.may_act_for_user(actor, target["id"], target["region"]):
        raise Forbidden(f"user {user_id} is not yours to act for")
    return target
