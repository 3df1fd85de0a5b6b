"""Refuse a request body larger than API_MAX_BODY_BYTES with 413, before the app reads it.

Pure ASGI middleware (added by `create_app`). A declared Content-Length over the limit is
refused at once, unread. A body without a length (chunked) is read here up to the limit; one
chunk past it and the request is refused, so no body larger than the limit is ever held.
A body within the limit is handed to the app unchanged.
"""

from __future__ import annotations

import json
import logging

log = logging.getLogger(__name__)


class BodyLimit:
    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is None:
            await self.app(scope, receive, send)  # h11 refuses a bad Content-Length itself
            return
        if length > self.max_bytes:
            await self._refuse(scope, send, f"{length} bytes declared")
            return
        if length >= 0:
            await self.app(scope, receive, send)  # the server delivers exactly `length`
            return
        await self._chunked(scope, receive, send)

    async def _chunked(self, scope, receive, send):
        """No Content-Length: buffer up to the limit, then replay to the app."""
        messages, size = [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break  # disconnected
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(scope, send, "more than that sent without a length")
                return
            if not message.get("more_body", False):
                break

        async def replay():
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope, send, why: str) -> None:
        log.warning("%s %s refused: body over %s bytes (%s)", scope["method"],
                    scope["path"], self.max_bytes, why)
        body = json.dumps({"detail": f"request body larger than {self.max_bytes} bytes"})
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body.encode()})


def _content_length(scope) -> int | None:
    """The declared length; -1 when none is declared; None when it does not parse."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return -1
