"""ETags for the reads the console polls, so "nothing changed" costs no body.

A GET route that lists 304 among its documented answers (`responses=codes(..., 304)`)
gets, on a 200 JSON answer, an `ETag` (a digest of the exact body) and
`Cache-Control: private, no-cache`; a request whose `If-None-Match` names that tag gets
`304 Not Modified` with no body instead. The route still runs (each such read is one or a
few indexed queries): what is saved is the body on the wire and the client's parsing and
redrawing. A version number kept by the writers would also save the query, but would put
a write on the engine's hot path for every change; see docs/decisions.md.

`install(app)` is the one line create_app needs.
"""

from __future__ import annotations

import hashlib

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    app.add_middleware(ETags)


def etag(body: bytes) -> str:
    """A strong validator: the same tag means byte-for-byte the same body."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def matches(if_none_match: str, tag: str) -> bool:
    """RFC 9110 If-None-Match: `*`, or a list of tags compared weakly (W/ ignored)."""
    wanted = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in wanted or tag in wanted


class ETags:
    """ASGI middleware: buffers the body of an answer that may carry an ETag (small JSON
    answers of routes documenting 304), passes every other answer through untouched."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "GET":
            return await self.app(scope, receive, send)
        started: dict = {}
        body = bytearray()

        async def buffering_send(message):
            if message["type"] == "http.response.start":
                if not _taggable(scope, message):
                    return await send(message)
                started.update(message)
                return None
            if not started or message["type"] != "http.response.body":
                return await send(message)
            body.extend(message.get("body", b""))
            if not message.get("more_body", False):
                await _answer(scope, started, bytes(body), send)
            return None

        await self.app(scope, receive, buffering_send)


def _taggable(scope, start: dict) -> bool:
    route = scope.get("route")
    if start["status"] != 200 or 304 not in (getattr(route, "responses", None) or {}):
        return False
    content_type = dict(start.get("headers", [])).get(b"content-type", b"")
    return content_type.startswith(b"application/json")


async def _answer(scope, start: dict, body: bytes, send) -> None:
    tag = etag(body)
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"cache-control"]
    extra = [(b"etag", tag.encode()), (b"cache-control", b"private, no-cache")]
    asked = dict(scope.get("headers", [])).get(b"if-none-match")
    if asked is not None and matches(asked.decode("latin-1"), tag):
        await send({"type": "http.response.start", "status": 304, "headers": extra})
        await send({"type": "http.response.body", "body": b""})
        return
    await send({"type": "http.response.start", "status": 200, "headers": headers + extra})
    await send({"type": "http.response.body", "body": body})
