"""Errors the services raise for the API (and any other caller) to map to answers.

Each carries a `detail` for people. The API maps them: NotFound 404, Conflict 409,
Forbidden 403, Unauthorized 401, Unavailable 503, TooManyAttempts 429.
"""

from __future__ import annotations


class ServiceError(Exception):
    """A request the service refuses; `detail` says why, in one line."""

    status_code = 400

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class NotFound(ServiceError):
    status_code = 404


class Conflict(ServiceError):
    """The target's state does not allow it (already decided, released, decided twice)."""

    status_code = 409


class Forbidden(ServiceError):
    """Authenticated, but not allowed to act on someone else's user or work."""

    status_code = 403


class Unauthorized(ServiceError):
    """No valid session: token missing, unknown, expired or ended; or a wrong password."""

    status_code = 401


class Unavailable(ServiceError):
    """A server (PostgreSQL, Redis or RabbitMQ) does not answer; `server` names it."""

    status_code = 503

    def __init__(self, server: str, detail: str):
        super().__init__(detail)
        self.server = server


class TooManyAttempts(ServiceError):
    """Too many failed logins for one username; try again after `retry_after` seconds."""

    status_code = 429

    def __init__(self, detail: str, retry_after: int):
        super().__init__(detail)
        self.retry_after = retry_after
