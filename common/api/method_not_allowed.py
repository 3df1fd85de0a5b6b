"""405 answers that name every method of the path in `Allow` (RFC 9110).

Starlette answers 405 from the first route whose path matches, so for a path served by two
routes (`POST` and `DELETE /users/{id}/active`) its Allow header named one method only.
Installed by `create_app`; other HTTP errors keep FastAPI's own handler.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException
from starlette.routing import Match

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


async def _http_error(request: Request, error: HTTPException):
    if error.status_code == 405:
        allowed = [method for method in METHODS if _served(request, method)]
        if allowed:
            error.headers = {**(error.headers or {}), "Allow": ", ".join(allowed)}
    return await http_exception_handler(request, error)


def _served(request: Request, method: str) -> bool:
    """Whether some route (also inside included routers) takes this path with `method`."""
    scope = {**request.scope, "method": method}
    return any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes)


def install(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, _http_error)
