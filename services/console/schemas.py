"""What the console keeps per browser session, and what a service's refusal says."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class Acting:
    """The acting session the console holds for a staff member (its token never leaves)."""

    token: str
    session_id: str
    mode: str
    expires_at: datetime
    actor_name: str
    subject_org_id: str
    subject_name: str


@dataclass
class BrowserSession:
    """Server-side state behind one session cookie."""

    id: str
    csrf_token: str
    last_seen: float
    token: str | None = None
    me: dict[str, Any] | None = None
    acting: Acting | None = None
    flash: list[str] = field(default_factory=list)
    # Cursors of the company list pages seen, per search: page n starts at cursors[n].
    company_cursors: dict[str, list[str | None]] = field(default_factory=dict)

    @property
    def signed_in(self) -> bool:
        return self.token is not None and self.me is not None

    @property
    def is_staff(self) -> bool:
        return bool(self.me and self.me.get("kind") == "staff")

    @property
    def api_token(self) -> str | None:
        """The token a page's calls use: the acting session's while acting, else one's own."""
        return self.acting.token if self.acting else self.token


@dataclass
class ServiceError(Exception):
    """A service answered with an error: its status, `detail` and the policy's `reason`."""

    status: int
    detail: str
    reason: str | None = None
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> str:
        if self.reason and self.reason not in self.detail:
            return f"{self.detail}: {self.reason}"
        return self.detail

    def __str__(self) -> str:
        return f"{self.status} {self.message}"
