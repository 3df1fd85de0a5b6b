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


async def _http_error(request: Request, error: HTTPException):
    if error.status_code == 405:
        scope = {**request.scope, "method": "\x00"}
        methods = set()
        for route in _leaves(request.app.router.routes):
            match, _ = route.matches(scope)
            if match != Match.NONE:
                methods |= getattr(route, "methods", None) or set()
        if methods:
            error.headers = {**(error.headers or {}), "Allow": ", ".join(sorted(methods))}
    return await http_exception_handler(request, error)


def _leaves(routes):
    """Every route, also those of included routers (FastAPI nests them)."""
    for route in routes:
        nested = getattr(getattr(route, "original_router", None), "routes", None)
        if nested is None:
            nested = getattr(route, "routes", None)
        if nested is None:
            yield route
        else:
            yield from _leaves(nested)


def install(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, _http_error)
