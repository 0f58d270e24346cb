"""Accepting an invitation: the contact chooses a password with the single-use link and is
logged in as the active user the invitation describes; an expired link tells the inviter."""

from __future__ import annotations

from uuid import uuid4

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from libs.common.clock import utcnow
from libs.common.errors import Conflict, Invalid, NotFound
from libs.common.events import EventContext
from libs.common.runtime import ServiceRuntime, UnitOfWork
from libs.contracts.customers import InvitationAccepted, InvitationExpired
from libs.contracts.identity import UserCreated
from services.identity.invitation_addresses import WITHHELD
from services.identity.invitations import Gone, hash_token, status_of
from services.identity.login_tokens import issue_login_token
from services.identity.mail_templates import fmt_time, send_mail
from services.identity.models import Invitation, Organization, User
from services.identity.org_people import as_user, customer_org, principal_of
from services.identity.parts import identity_parts, mail_committed
from services.identity.passwords import check_password_policy
from services.identity.schemas import TokenRead
from services.identity.settings import identity_settings


async def accept(*, runtime: ServiceRuntime, token: str, password: str) -> TokenRead:
    """Create the active user the invitation describes and log them in. An expired one is
    410 "this invitation expired on <date>", and its inviter hears of the attempt."""
    token_hash = hash_token(token)
    async with runtime.reading() as session:
        found = await session.scalar(select(Invitation).where(Invitation.token_hash == token_hash))
    # A withheld invitation (invitation_addresses.py) was never sent: its token is nobody's.
    if found is None or found.status == WITHHELD:
        raise NotFound("no such invitation (the link is wrong, or was replaced by a newer one)")
    if status_of(found) == "expired":
        await _expired_attempt(runtime, found.id)
        raise Gone(
            f"this invitation expired on {fmt_time(found.expires_at)}",
            reason="expired",
            expired_at=found.expires_at.isoformat(),
        )
    if found.status != "pending":
        raise Gone(f"this invitation was {found.status}", reason=found.status)
    weak = check_password_policy(
        password, email=found.email, min_length=identity_settings(runtime).password_min_length
    )
    if weak:
        raise Invalid(weak, reason="weak_password")
    password_hash = await identity_parts(runtime).passwords.hash(password)
    try:
        async with runtime.unit_of_work() as uow:
            invitation = await uow.session.get(Invitation, found.id)
            # Re-checked in the transaction: accepted twice at once, or revoked meanwhile.
            if (
                invitation is None
                or invitation.token_hash != token_hash
                or invitation.status != "pending"
                or status_of(invitation) != "pending"
            ):
                raise Gone("this invitation is no longer open", reason="closed")
            org = await customer_org(uow.session, invitation.org_id)
            user = User(
                id=str(uuid4()),
                email=invitation.email,
                name=invitation.name,
                password_hash=password_hash,
                kind="customer",
                org_id=org.id,
                roles=list(invitation.roles),
                permissions=[],
                active=True,
            )
            uow.session.add(user)
            invitation.status = "accepted"
            invitation.closed_at = utcnow()
            invitation.user_id = user.id
            await uow.session.flush()
            # The new user is the actor of their own creation (nobody else is signed in).
            actor = principal_of(user)
            uow.publish(as_user(UserCreated, user), actor, subject_org_id=org.id)
            uow.publish(
                InvitationAccepted(
                    invitation_id=invitation.id,
                    org_id=org.id,
                    user_id=user.id,
                    email=user.email,
                    roles=list(user.roles),
                ),
                actor,
                subject_org_id=org.id,
            )
    except IntegrityError as exc:
        raise Conflict(f"{found.email} already has an account", reason="email_taken") from exc
    return await issue_login_token(runtime=runtime, user=user, org=org)


async def _expired_attempt(runtime: ServiceRuntime, invitation_id: str) -> None:
    async with runtime.unit_of_work() as uow:
        invitation = await uow.session.get(Invitation, invitation_id)
        if invitation is None:
            return
        org = await uow.session.get(Organization, invitation.org_id)
        if invitation.status == "pending":
            invitation.status = "expired"
            invitation.closed_at = utcnow()
        if invitation.invited_by_email:
            await send_mail(
                uow,
                to=invitation.invited_by_email,
                key="invitation_expired",
                values={
                    "inviter_name": invitation.invited_by_name,
                    "email": invitation.email,
                    "org_name": org.name if org else invitation.org_id,
                    "expired_at": fmt_time(invitation.expires_at),
                },
            )
        uow.publish(
            InvitationExpired(
                invitation_id=invitation.id,
                org_id=invitation.org_id,
                email=invitation.email,
                expired_at=invitation.expires_at,
            ),
            _anonymous_context(uow, invitation.org_id),
        )
    mail_committed(runtime)


def _anonymous_context(uow: UnitOfWork, org_id: str) -> EventContext:
    return EventContext(
        actor_id=None,
        actor_org_id=None,
        subject_org_id=org_id,
        subject_user_id=None,
        acting_session_id=None,
        policy_revision=uow.runtime.authorizer.revision,
    )
