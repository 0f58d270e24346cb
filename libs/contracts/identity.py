"""What identity publishes: acting sessions, organisations, users, caretakers, logins, keys."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, Field

from libs.contracts.base import Event, Id, Uuid

# ---------------------------------------------------------------- acting sessions


class ActingSessionStarted(Event):
    event_type: ClassVar[str] = "com.onbehalf.identity.acting_session.started"

    session_id: Id
    mode: str
    customer_org_id: Id
    customer_name: str
    actor_name: str
    expires_at: datetime
    idle_timeout_seconds: int
    # The session this one replaced when the staff member switched customers directly.
    switched_from: str | None


class ActingSessionDenied(Event):
    event_type: ClassVar[str] = "com.onbehalf.identity.acting_session.denied"

    customer_org_id: Id
    mode: str
    reason: str | None


class ActingSessionEnded(Event):
    """Revokes the session everywhere: its id becomes a revocation-bucket key, so it must be
    a UUID (a space, `*` or `>` would be an invalid key); consumers read only these fields."""

    event_type: ClassVar[str] = "com.onbehalf.identity.acting_session.ended"

    session_id: Uuid
    reason: str | None = Field(default=None, max_length=200)
    detail: str | None = None
    mode: str | None = None


# ---------------------------------------------------------------- organisations and users


class OrgRecord(BaseModel):
    id: Id
    name: str
    contract_number: str
    country: str
    status: str
    allow_assistance: bool
    is_seller: bool


class OrgCreated(OrgRecord, Event):
    event_type: ClassVar[str] = "com.onbehalf.identity.org.created"


class OrgUpdated(Event):
    """`generation` rose when the change touches rights (status): older tokens are refused."""

    event_type: ClassVar[str] = "com.onbehalf.identity.org.updated"

    org: OrgRecord
    changed: list[str]
    generation: int


class ConsentChanged(Event):
    event_type: ClassVar[str] = "com.onbehalf.identity.org.consent_changed"

    org_id: Id
    allow_assistance: bool


class UserRecord(BaseModel):
    id: Id
    email: str
    name: str
    kind: str
    org_id: Id
    roles: list[str]
    permissions: list[str]
    active: bool


class UserCreated(UserRecord, Event):
    event_type: ClassVar[str] = "com.onbehalf.identity.user.created"


class UserUpdated(Event):
    event_type: ClassVar[str] = "com.onbehalf.identity.user.updated"

    user: UserRecord
    changed: list[str]
    generation: int


class UserCreationRefused(Event):
    """Said to the audit log only: the caller is told nothing (no probing for e-mails)."""

    event_type: ClassVar[str] = "com.onbehalf.identity.user.creation_refused"

    org_id: Id
    reason: str


class PasswordChanged(Event):
    event_type: ClassVar[str] = "com.onbehalf.identity.user.password_changed"

    user_id: Id
    generation: int
    active: bool


class CaretakerAssigned(Event):
    event_type: ClassVar[str] = "com.onbehalf.identity.caretaker.assigned"

    org_id: Id
    user_id: Id


class CaretakerRemoved(Event):
    event_type: ClassVar[str] = "com.onbehalf.identity.caretaker.removed"

    org_id: Id
    user_id: Id


# ---------------------------------------------------------------- logins and keys


class LoginFailed(Event):
    event_type: ClassVar[str] = "com.onbehalf.identity.login.failed"

    email: str
    address: str
    reason: str


class LoginThrottled(Event):
    event_type: ClassVar[str] = "com.onbehalf.identity.login.throttled"

    email: str
    address: str
    scope: str
    retry_after: int


class LoginSessionEnded(Event):
    """A logout: every token of the login session is refused once this is projected."""

    event_type: ClassVar[str] = "com.onbehalf.identity.login_session.ended"

    login_session_id: Id
    user_id: str | None
    reason: str
    acting_sessions_ended: int


class SigningKeyRotated(Event):
    event_type: ClassVar[str] = "com.onbehalf.identity.signing_key.rotated"

    kid: str
    previous_kid: str | None


class PreferencesChanged(Event):
    """A user changed their own preferences: a staff member's default customer after login,
    or the opt-in to a personal login link."""

    event_type: ClassVar[str] = "com.onbehalf.identity.user.preferences_changed"

    user_id: Id
    default_customer_org_id: str | None
    after_login: str
    mode: str
    login_link: bool


class LoginLinkIssued(Event):
    """A personal login link was made (`replaced`: an earlier one stopped working) or revoked."""

    event_type: ClassVar[str] = "com.onbehalf.identity.login_link.issued"

    user_id: Id
    replaced: bool


class LoginLinkRevoked(Event):
    event_type: ClassVar[str] = "com.onbehalf.identity.login_link.revoked"

    user_id: Id


class LoginLinkUsed(Event):
    """Someone logged in with a personal login link, from `address`; `refused` says why it
    did not log them in (unknown or revoked link, inactive user...), or is None."""

    event_type: ClassVar[str] = "com.onbehalf.identity.login_link.used"

    user_id: str | None
    address: str
    refused: str | None = None
