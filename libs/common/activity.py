"""Acting-session activity: services report it (throttled) so identity can end idle sessions."""

from __future__ import annotations

import time

from nats.aio.client import Client as NATS

ACTIVITY_SUBJECT = "identity.acting_activity"


class ActivityReporter:
    """At most one report per session per `interval` seconds; losing one only shortens idleness."""

    MAX_TRACKED = 50_000

    def __init__(self, nc: NATS, *, interval: float) -> None:
        self._nc = nc
        self._interval = interval
        self._last: dict[str, float] = {}

    async def touch(self, session_id: str) -> None:
        now = time.monotonic()
        if now - self._last.get(session_id, -self._interval) < self._interval:
            return
        self._last[session_id] = now
        if len(self._last) > self.MAX_TRACKED:
            horizon = now - self._interval
            self._last = {k: v for k, v in self._last.items() if v >= horizon}
        if self._nc.is_connected:
            await self._nc.publish(ACTIVITY_SUBJECT, session_id.encode())
