"""Bodies of the supervision endpoints (common/api/supervision.py)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from common.api.schemas import MAX_INT


class MoveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: int = Field(ge=1, le=MAX_INT, description="the operator who takes the work")


class HistoryRow(BaseModel):
    id: int
    at: datetime
    event_id: UUID
    assignment_id: int
    user_id: int
    actor_id: int | None = None
    actor: str
    previous_state: str | None = None
    new_state: str
    reason: str | None = None


class HistoryPage(BaseModel):
    items: list[HistoryRow]
    next_cursor: str | None = Field(None, description="pass as `cursor` for older rows")


class Percentiles(BaseModel):
    severity: int
    count: int
    p50_seconds: float
    p95_seconds: float


class OutcomeCount(BaseModel):
    outcome: str
    reason: str | None = None
    count: int


class ReasonCount(BaseModel):
    reason: str | None = None
    count: int


class Breach(BaseModel):
    event_id: UUID
    severity: int
    rule_type: str
    camera_id: str
    location: str
    created_at: datetime
    decided_at: datetime | None = None
    outcome: str | None = None
    target_minutes: float
    over_seconds: float


class SeverityMinute(BaseModel):
    minute: datetime
    severity: int
    count: int


class OutcomeMinute(BaseModel):
    minute: datetime
    outcome: str
    count: int


class Rate(BaseModel):
    key: str = Field(description="the rule type or camera")
    decided: int
    approved: int
    false_alarms: int
    approval_rate: float
    false_alarm_rate: float


class Now(BaseModel):
    waiting: int
    oldest_waiting_since: datetime | None = None
    live_assignments: int


class Activity(BaseModel):
    user_id: int
    last_seen_at: datetime | None = None


class RegionMetrics(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    region: str
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    max_assignments: int
    response_target_minutes: dict[str, float]
    now: Now
    activity: list[Activity]
    time_to_assign: list[Percentiles]
    time_to_decide: list[Percentiles]
    decisions: list[OutcomeCount]
    releases: list[ReasonCount]
    breach_count: int
    breaches: list[Breach] = Field(description="most overdue first, at most 100")
    events_per_minute: list[SeverityMinute]
    decisions_per_minute: list[OutcomeMinute]
    by_rule_type: list[Rate]
    by_camera: list[Rate]


class QueueDepth(BaseModel):
    queue: str = Field(description="the queue's name, without the namespace")
    messages: int | None = Field(None, description="ready messages; null when RabbitMQ "
                                                   "did not answer")


class RegionNow(Now):
    region: str
    max_assignments: int
    activity: list[Activity]
    queues: list[QueueDepth] = Field(description="the three queues and their dead-letter "
                                                 "queues (system-wide, not per region)")
