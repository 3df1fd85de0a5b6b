"""Request and response bodies of the HTTP API (they also make the OpenAPI at /docs)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr

# Ids in paths: integers PostgreSQL can hold, so a huge number is a 422, not a 500.
MAX_INT = 2**31 - 1
MAX_BIGINT = 2**63 - 1


def _storable(value: str) -> str:
    """Refuse what PostgreSQL text cannot hold (NUL) or UTF-8 cannot encode (surrogates)."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


# The pattern says in the schema what `_storable` enforces, so a client (and schemathesis)
# knows that a NUL character is refused.
Text = Annotated[StrictStr, Field(pattern=r"^[^\x00]*$"), AfterValidator(_storable)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginRequest(_Body):
    username: Annotated[Text, Field(min_length=1, max_length=100)]
    password: Annotated[Text, Field(min_length=1, max_length=1000)]


class User(BaseModel):
    id: int
    username: str
    name: str
    role: Literal["operator", "supervisor"]
    region: str
    max_assignments: int | None = Field(None, description="the cap of live assignments")


class UserState(User):
    available: bool


class LoginResponse(BaseModel):
    token: str
    user: User


class SessionResponse(BaseModel):
    user: UserState
    expires_in: int = Field(description="seconds until the session ends without a heartbeat")


RejectReason = Literal["false_alarm", "duplicate", "handled_on_site", "other"]


class DecisionRequest(_Body):
    status: Literal["approved", "rejected", "completed"] = Field(
        description="'completed' is accepted as approved, as the original documented")
    reason: RejectReason | None = None
    note: Annotated[Text, Field(max_length=5000)] | None = None


class Assignment(BaseModel):
    assignment_id: int
    user_id: int
    event_id: UUID
    status: Literal["pending", "approved", "rejected"]
    deleted: bool
    created_at: datetime
    updated_at: datetime
    decided_at: datetime | None = None
    decided_by: int | None = None
    decision_reason: str | None = None
    decision_note: str | None = None
    released_at: datetime | None = None
    release_reason: str | None = None
    region: str
    rule_type: str
    location: str
    severity: int
    device_id: str
    camera_id: str
    frame_reference: str
    state: str
    event_created_at: datetime
    expires_at: datetime | None = Field(None, description="when live work is released")


class ProcessHealth(BaseModel):
    status: Literal["ok", "stale", "missing"]
    instances: int = Field(description="copies beating in time")
    last_seen: str | None = Field(description="ISO time of the newest beat")


class Health(BaseModel):
    status: Literal["ok", "degraded", "down"]
    servers: dict[str, Literal["ok", "down"]]
    processes: dict[str, ProcessHealth]


class HealthDown(Health):
    detail: str = Field(description="the servers that do not answer, by name")


EventRegion = Literal["NA", "EU", "APAC", "LATAM"]


class OperatorOverview(BaseModel):
    id: int
    username: str
    name: str
    available: bool = Field(description="takes new work (users.available)")
    live: int = Field(description="live assignments: pending and not released")
    present: bool = Field(description="has a live session (logged in, heartbeat on time)")


class WaitingBySeverity(BaseModel):
    severity: int
    count: int
    oldest_waiting_since: datetime | None = None


class RegionOverview(BaseModel):
    region: EventRegion
    operators: list[OperatorOverview]
    waiting: list[WaitingBySeverity] = Field(description="severities 5 to 1, zeros included")
    waiting_total: int
