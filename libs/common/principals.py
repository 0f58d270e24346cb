"""Who is calling: a staff member, a customer's user, or a staff member acting for a customer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(slots=True)
class StaffUser:
    """An employee of the seller: sales rep, CSR, supervisor, admin or security reviewer."""

    id: str
    org_id: str
    name: str
    email: str = ""
    roles: list[str] = field(default_factory=list)
    permissions: list[str] = field(default_factory=list)
    active: bool = True
    kind: str = "staff"
    # From the login token: its login session (logout ends it), the rights generation it was
    # issued at (a later change of rights makes it stale) and its expiry.
    login_session_id: str | None = None
    generation: int = 0
    expires_at: datetime | None = None

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def has_permission(self, permission: str) -> bool:
        return permission in self.permissions


@dataclass(slots=True)
class CustomerUser:
    """An employee of a customer organisation: admin, buyer or viewer."""

    id: str
    org_id: str
    name: str
    email: str = ""
    roles: list[str] = field(default_factory=list)
    active: bool = True
    kind: str = "customer"
    login_session_id: str | None = None
    generation: int = 0
    # The organisation's generation: it changes with the organisation's status.
    org_generation: int = 0
    expires_at: datetime | None = None

    def has_role(self, role: str) -> bool:
        return role in self.roles


@dataclass(slots=True)
class ActingSession:
    """A staff member (the actor) acting for a customer organisation (the subject)."""

    id: str
    actor_id: str
    actor_name: str
    actor_org_id: str
    subject_org_id: str
    subject_name: str
    mode: str
    expires_at: datetime | None = None
    # The staff member's roles when the session started: policies may weigh them (a
    # supervisor taking over a cart lock) without a call to identity.
    actor_roles: list[str] = field(default_factory=list)
    kind: str = "acting"
    # The staff member's login session this one was started from (it never outlives it), and
    # the generations of the actor's rights and of the customer organisation at the start.
    login_session_id: str | None = None
    actor_generation: int = 0
    org_generation: int = 0

    def actor_has_role(self, role: str) -> bool:
        return role in self.actor_roles


Principal = StaffUser | CustomerUser | ActingSession


def actor_ref(principal: Principal) -> tuple[str, str]:
    """(actor id, actor org id): the person who really pressed the button."""
    if isinstance(principal, ActingSession):
        return principal.actor_id, principal.actor_org_id
    return principal.id, principal.org_id


def subject_ref(principal: Principal) -> tuple[str | None, str | None]:
    """(subject org id, subject user id): on whose behalf the action happens."""
    if isinstance(principal, ActingSession):
        return principal.subject_org_id, None
    if isinstance(principal, CustomerUser):
        return principal.org_id, principal.id
    return None, None


def org_in_view(principal: Principal) -> str:
    """The organisation whose catalog, cart and orders a request is about. Plain staff get
    their own organisation, so the policy, not a handler, explains why that is refused."""
    if isinstance(principal, ActingSession):
        return principal.subject_org_id
    return principal.org_id
