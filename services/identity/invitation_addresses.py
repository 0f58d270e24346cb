"""Whose an invited address is, seen from the inviting organisation: its own (a clear 409),
someone else's (the invitation is withheld but answered like any other), or free (sent).

Issue 13 wants a clear 409 for a second invitation; issue 9 wants a customer's admin not to
learn whether an address is registered anywhere. The line is drawn at the organisation
(docs/decisions.md, "What an invitation tells a customer admin"): what the admin already sees on
the Employees and Invitations pages is refused, anything else is answered neutrally."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import select

from libs.common.db import transaction_lock
from libs.common.errors import Conflict
from libs.common.principals import Principal
from libs.common.runtime import ServiceRuntime, UnitOfWork
from libs.contracts.customers import InvitationRefused
from services.identity.administration import ADMINISTRATION
from services.identity.mail_templates import send_mail
from services.identity.models import Invitation, Organization, User
from services.identity.settings import identity_settings

# Stored for an invitation that is never sent: it reads as `pending` to the organisation that
# made it (listed, resent, revoked, expiring like the others), stays outside the
# one-open-invitation-per-address index (so the address's real invitation is not blocked) and
# can never be accepted (its token is random and never leaves identity).
WITHHELD = "undeliverable"
OPEN = ("pending", WITHHELD)

Fate = Literal["send", "withhold"]


async def lock_address(uow: UnitOfWork, address: str) -> None:
    """Invitations to one address are decided one at a time (two organisations inviting it at
    once must not both be sent, nor one refused by the unique index with a revealing 409)."""
    digest = hashlib.sha256(f"invitation:{address}".encode()).digest()
    await transaction_lock(await uow.statements(), int.from_bytes(digest[:8], "big", signed=True))


async def fate_of(
    uow: UnitOfWork,
    runtime: ServiceRuntime,
    *,
    caller: Principal,
    org: Organization,
    address: str,
    exclude_id: str | None = None,
) -> Fate:
    """Raise the 409 the caller may see, or say whether the invitation goes out. Platform
    admins, who may list every user anyway, are told the truth everywhere."""
    sees_everyone = runtime.authorizer.decide(caller, "manage", ADMINISTRATION).allowed
    session = uow.session
    owner_org = await session.scalar(select(User.org_id).where(User.email == address))
    if owner_org is not None and (owner_org == org.id or sees_everyone):
        raise Conflict(f"{address} already has an account", reason="email_taken")
    query = select(Invitation.org_id, Invitation.status).where(
        Invitation.email == address, Invitation.status.in_(OPEN)
    )
    if exclude_id is not None:
        query = query.where(Invitation.id != exclude_id)
    open_ones = (await session.execute(query)).all()
    # This organisation's own invitations, withheld ones included: it sees them all as pending.
    if any(org_id == org.id for org_id, _ in open_ones):
        raise Conflict(f"{address} already has an open invitation", reason="already_invited")
    if owner_org is not None:
        return "withhold"
    # Another organisation's withheld invitation is nothing: it holds no address.
    if any(status == "pending" for _, status in open_ones):
        if sees_everyone:
            raise Conflict(f"{address} already has an open invitation", reason="already_invited")
        return "withhold"
    return "send"


async def withhold(
    uow: UnitOfWork,
    runtime: ServiceRuntime,
    *,
    invitation: Invitation,
    org: Organization,
    caller: Principal,
    tell_owner: bool,
) -> None:
    """The invitation reads as sent (new dates, a token) but nothing is sent to accept it; the
    address's owner hears that someone tried (once per invitation, not on every resend, so an
    admin cannot use it to flood them) and security reviewers see the refusal."""
    now = datetime.now(UTC)
    invitation.token_hash = hashlib.sha256(secrets.token_bytes(32)).hexdigest()
    invitation.sent_at = now
    invitation.expires_at = now + timedelta(days=identity_settings(runtime).invitation_valid_days)
    invitation.status = WITHHELD
    invitation.closed_at = None
    if tell_owner:
        await send_mail(
            uow,
            to=invitation.email,
            key="invitation_elsewhere",
            values={
                "email": invitation.email,
                "inviter_name": invitation.invited_by_name,
                "org_name": org.name,
            },
        )
    uow.publish(
        InvitationRefused(
            org_id=org.id,
            email=invitation.email,
            reason="the address belongs to another organisation or has its open invitation: "
            "withheld, answered as pending",
        ),
        caller,
        subject_org_id=org.id,
    )
