"""The server-side session store: the browser holds only a random id in an httpOnly cookie.

Kept in the console's memory (bounded, idle sessions expire): a console restart signs
everyone out, which is the safe direction; the tokens it held end on their own.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict

from services.console.schemas import BrowserSession

COOKIE = "onbehalf_console"


class SessionStore:
    def __init__(self, *, idle_seconds: int, max_sessions: int) -> None:
        self._idle = idle_seconds
        self._max = max_sessions
        self._sessions: OrderedDict[str, BrowserSession] = OrderedDict()

    def new(self) -> BrowserSession:
        session = BrowserSession(
            id=secrets.token_urlsafe(32),
            csrf_token=secrets.token_urlsafe(32),
            last_seen=time.monotonic(),
        )
        self._sessions[session.id] = session
        while len(self._sessions) > self._max:
            self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str | None) -> BrowserSession | None:
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = time.monotonic()
        if now - session.last_seen > self._idle:
            del self._sessions[session_id]
            return None
        session.last_seen = now
        self._sessions.move_to_end(session_id)
        return session

    def renew(self, session: BrowserSession) -> BrowserSession:
        """A new id and CSRF token for the same state (at sign-in: no session fixation)."""
        self._sessions.pop(session.id, None)
        fresh = self.new()
        fresh.flash = session.flash
        return fresh

    def drop(self, session: BrowserSession) -> None:
        """Forget everything held for this browser: tokens, acting session, messages."""
        self._sessions.pop(session.id, None)
        session.token = None
        session.me = None
        session.acting = None
