"""Whose address is this request from? Keys the login throttle.

The console (the only trusted proxy) sends `X-Forwarded-For: <browser address>` with
`X-Console-Secret: <CONSOLE_SECRET>`. The API believes X-Forwarded-For only when the secret
matches (compared in constant time); for anybody else the address is the TCP peer's, so a
stranger cannot pick the address their failures are counted against.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Annotated

from fastapi import Depends, Header, Request

from common.api.deps import Res


def client_address(
    request: Request,
    res: Res,
    x_forwarded_for: Annotated[str | None, Header(include_in_schema=False)] = None,
    x_console_secret: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> str:
    """The browser's address when the console vouches for it, else the TCP peer's."""
    peer = request.client.host if request.client else "unknown"
    if x_forwarded_for is None or x_console_secret is None:
        return peer
    if not hmac.compare_digest(x_console_secret.encode("utf-8", "replace"),
                               res.settings.CONSOLE_SECRET.encode("utf-8")):
        return peer
    forwarded = x_forwarded_for.split(",")[0].strip()
    try:
        return str(ipaddress.ip_address(forwarded))
    except ValueError:
        return peer


ClientAddress = Annotated[str, Depends(client_address)]
