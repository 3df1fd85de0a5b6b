"""Every error the API answers, as JSON `{"detail": ...}`; never a 500 for bad input.

Service errors carry their own code; a server that does not answer is a 503 naming it. The
API's own limits have their own answers: no pooled connection free in time (Busy), and a
transaction PostgreSQL rolled back in a deadlock or serialization conflict; both 503 with
Retry-After, never "PostgreSQL is unavailable".
"""

from __future__ import annotations

import logging

import psycopg
import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pika.exceptions import AMQPError

from common.services.errors import ServiceError, TooManyAttempts, Unauthorized, Unavailable

log = logging.getLogger(__name__)


class Busy(ServiceError):
    """Every pooled database connection of this API worker stayed in use too long."""

    status_code = 503

    def __init__(self, timeout: float):
        super().__init__(f"the API is busy: no database connection free within "
                         f"{timeout:g} s; retry shortly")


def _service_error(request: Request, error: ServiceError) -> JSONResponse:
    headers = {}
    if isinstance(error, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(error, TooManyAttempts):
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, Busy):
        headers["Retry-After"] = "1"
        log.warning("%s %s: %s", request.method, request.url.path, error.detail)
    return JSONResponse({"detail": error.detail}, status_code=error.status_code,
                        headers=headers)


def _unavailable(server: str, error: Exception) -> JSONResponse:
    text = str(error).strip()
    detail = f"{server} is unavailable: {text.splitlines()[0] if text else type(error).__name__}"
    log.error("%s", detail)
    return JSONResponse({"detail": detail, "server": server}, status_code=503)


def _postgres_down(request: Request, error: Exception) -> JSONResponse:
    return _unavailable("PostgreSQL", error)


def _conflict_rolled_back(request: Request,
                          error: psycopg.errors.TransactionRollback) -> JSONResponse:
    kind = "a deadlock" if isinstance(error, psycopg.errors.DeadlockDetected) \
        else "a serialization conflict"
    detail = (f"the database rolled this request back in {kind} with a concurrent one; "
              "retry")
    log.warning("%s %s: %s (%s)", request.method, request.url.path, detail,
                type(error).__name__)
    return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "1"})


def _redis_down(request: Request, error: Exception) -> JSONResponse:
    return _unavailable("Redis", error)


def _rabbitmq_down(request: Request, error: Exception) -> JSONResponse:
    return _unavailable("RabbitMQ", error)


def _server_unavailable(request: Request, error: Unavailable) -> JSONResponse:
    return JSONResponse({"detail": error.detail, "server": error.server}, status_code=503)


def _validation(request: Request, error: RequestValidationError) -> JSONResponse:
    """FastAPI's 422, made safe to serialise (inputs may hold bytes or odd values)."""
    details = [
        {"loc": list(item.get("loc", ())), "msg": item.get("msg", ""),
         "type": item.get("type", "")}
        for item in error.errors()
    ]
    return JSONResponse({"detail": details}, status_code=422)


def install(app: FastAPI) -> None:
    app.add_exception_handler(Unavailable, _server_unavailable)
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(psycopg.OperationalError, _postgres_down)
    app.add_exception_handler(psycopg.errors.TransactionRollback, _conflict_rolled_back)
    app.add_exception_handler(redis.ConnectionError, _redis_down)
    app.add_exception_handler(redis.TimeoutError, _redis_down)
    app.add_exception_handler(AMQPError, _rabbitmq_down)
