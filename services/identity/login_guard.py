"""Refuse a burst of logins from one client address before any framework or database work."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import Counter

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOGIN_PATHS = frozenset({"/v1/auth/token", "/oauth/token"})

# Counted, not audited one by one: auditing each would make a flood write to the database.
LOGINS_REFUSED_IN_FLIGHT = Counter(
    "onbehalf_logins_refused_in_flight_total",
    "Logins refused at once because their address had too many in flight",
)


class LoginBurstGuard:
    """At most `limit` logins per client address in flight; more get 429 at once.

    A plain ASGI layer, so a refusal costs no routing, body parsing or validation: a burst of
    a hundred from one address must not make anyone else's login wait behind it.
    """

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self._app = app
        self._limit = limit
        self._in_flight: dict[str, int] = {}
        body = {
            "detail": f"too many logins at once from this address (at most {limit}); "
            "try again in 1 s",
            "reason": "login_throttled",
            "retry_after": 1,
        }
        self._refusal = json.dumps(body).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in LOGIN_PATHS:
            await self._app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else "unknown"
        busy = self._in_flight.get(address, 0)
        if busy >= self._limit:
            LOGINS_REFUSED_IN_FLIGHT.inc()
            await send(
                {
                    "type": "http.response.start",
                    "status": 429,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"retry-after", b"1"),
                        (b"content-length", str(len(self._refusal)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": self._refusal})
            return
        self._in_flight[address] = busy + 1
        try:
            await self._app(scope, receive, send)
        finally:
            left = self._in_flight[address] - 1
            if left:
                self._in_flight[address] = left
            else:
                del self._in_flight[address]
