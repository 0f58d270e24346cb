"""What identity publishes about a customer organisation's own people: invitations, mail
templates and the acting-session notices its admins receive (docs/customer-organisations.md).
Employees' changes are `identity.user.updated` (libs/contracts/identity.py), so that the
revocation projector raises their rights generation like any other user's."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from libs.contracts.base import Event, Id


class InvitationSent(Event):
    """Sent or resent (`sends` counts them); never the token, only the invitation's id."""

    event_type: ClassVar[str] = "com.onbehalf.identity.invitation.sent"

    invitation_id: Id
    org_id: Id
    email: str
    roles: list[str]
    expires_at: datetime
    sends: int


class InvitationRefused(Event):
    """One item of an invitation request refused (a taken address, unknown roles)."""

    event_type: ClassVar[str] = "com.onbehalf.identity.invitation.refused"

    org_id: Id
    email: str
    reason: str


class InvitationAccepted(Event):
    event_type: ClassVar[str] = "com.onbehalf.identity.invitation.accepted"

    invitation_id: Id
    org_id: Id
    user_id: Id
    email: str
    roles: list[str]


class InvitationExpired(Event):
    """Someone tried to accept after the expiry; the inviter is told by mail."""

    event_type: ClassVar[str] = "com.onbehalf.identity.invitation.expired"

    invitation_id: Id
    org_id: Id
    email: str
    expired_at: datetime


class InvitationRevoked(Event):
    event_type: ClassVar[str] = "com.onbehalf.identity.invitation.revoked"

    invitation_id: Id
    org_id: Id
    email: str


class MailTemplateChanged(Event):
    event_type: ClassVar[str] = "com.onbehalf.identity.mail_template.changed"

    key: str
    reset: bool


class ActingNoticesChanged(Event):
    event_type: ClassVar[str] = "com.onbehalf.identity.org.acting_notices_changed"

    org_id: Id
    acting_notices: str


class ActingNoticeSent(Event):
    """Mail told the organisation's admins about acting sessions (one, or a digest)."""

    event_type: ClassVar[str] = "com.onbehalf.identity.acting_notice.sent"

    org_id: Id
    session_ids: list[str]
    recipients: int
    digest: bool


class ApprovalRequestSent(Event):
    """Mail asked the organisation's admins to approve (or reject) an order that exceeds a
    budget (orders' `orders.budget.charged` with `state: awaiting`)."""

    event_type: ClassVar[str] = "com.onbehalf.identity.approval_request.sent"

    org_id: Id
    order_id: Id
    recipients: int
