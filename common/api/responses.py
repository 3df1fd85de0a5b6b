"""The error answers a route may give, for its OpenAPI entry (`responses=codes(...)`).

Every route lists every status it can return, so a client (and schemathesis) reads the
whole contract from /docs. Errors are JSON `{"detail": ...}` (DESIGN.md).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    detail: Any = Field(description="what went wrong, for people (a list for 422)")
    server: str | None = Field(None, description="with 503: the server that does not answer")


_MEANING = {
    304: "not modified: If-None-Match names the ETag the answer would carry (no body)",
    400: "the request cannot be read",
    401: "missing, unknown, expired or ended token; or a wrong username or password",
    403: "authenticated, but not yours to act on",
    404: "no such user, assignment, event or region",
    409: "the state does not allow it (already decided, released, at the cap, ...)",
    413: "the body is larger than API_MAX_BODY_BYTES",
    422: "the body, path or query does not validate",
    429: "too many failed logins; see Retry-After",
    503: "a server (PostgreSQL, Redis or RabbitMQ) does not answer, or the API is busy",
}


def codes(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these statuses: errors with their body; 304 (a GET that
    answers If-None-Match, common/api/supervision_etag.py) with none."""
    return {status: {"description": _MEANING[status]} if status == 304
            else {"model": ErrorBody, "description": _MEANING[status]}
            for status in statuses}
