"""Invitations: a platform admin, or a customer's admin for their own organisation, invites a
contact by e-mail; the contact chooses a password with the single-use link and is logged in.

Only the SHA-256 of the token is stored. An invitation is open (pending) until it is accepted,
revoked, or `invitation_valid_days` after it was last sent; one open invitation per address
(a partial unique index) and none for an address a user already has. Whose an address is, and
what the inviter may learn of it, is invitation_addresses.py's."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from libs.common.errors import Conflict, DomainError, Invalid, NotFound
from libs.common.paging import decode_time_cursor, page_of
from libs.common.principals import ActingSession, Principal
from libs.common.runtime import ServiceRuntime, UnitOfWork
from libs.contracts.customers import (
    InvitationRefused,
    InvitationRevoked,
    InvitationSent,
)
from services.identity.invitation_addresses import (
    OPEN,
    WITHHELD,
    fate_of,
    lock_address,
    withhold,
)
from services.identity.mail_templates import fmt_time, send_mail
from services.identity.models import Invitation, Organization
from services.identity.org_people import (
    customer_org,
    fresh_caller,
    policy_org,
)
from services.identity.parts import mail_committed
from services.identity.schemas import CUSTOMER_ROLES, PEOPLE_PAGE_DEFAULT
from services.identity.settings import identity_settings


class Gone(DomainError):
    status = 410


STATUSES = ("pending", "accepted", "expired", "revoked")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def status_of(invitation: Invitation, now: datetime | None = None) -> str:
    """The status its organisation sees: an open invitation past its expiry is expired,
    whether or not it was marked so, and a withheld one reads as pending."""
    if invitation.status in OPEN and invitation.expires_at <= (now or _now()):
        return "expired"
    return "pending" if invitation.status == WITHHELD else invitation.status


def read(invitation: Invitation) -> dict[str, Any]:
    return {
        "id": invitation.id,
        "org_id": invitation.org_id,
        "email": invitation.email,
        "name": invitation.name,
        "roles": list(invitation.roles),
        "status": status_of(invitation),
        "invited_by": {"id": invitation.invited_by_id, "name": invitation.invited_by_name},
        "created_at": invitation.created_at,
        "sent_at": invitation.sent_at,
        "expires_at": invitation.expires_at,
        "sends": invitation.sends,
        "closed_at": invitation.closed_at,
        "user_id": invitation.user_id,
    }


def check_roles(roles: list[str]) -> list[str]:
    unknown = sorted(set(roles) - CUSTOMER_ROLES)
    if unknown:
        raise Invalid(
            f"unknown customer roles: {', '.join(unknown)}; allowed: {sorted(CUSTOMER_ROLES)}"
        )
    if not roles:
        raise Invalid("an invitation needs at least one role (admin, buyer or viewer)")
    if "admin" in roles and len(set(roles)) > 1:
        raise Invalid("an admin has no other role: invite as admin, or as buyer/viewer")
    return sorted(set(roles))


async def _expire_stale(uow: UnitOfWork, email: str) -> None:
    """Open invitations of `email` past their expiry are marked expired (so that the
    address is open again, and the partial unique index agrees)."""
    now = _now()
    await uow.session.execute(
        update(Invitation)
        .where(Invitation.email == email, Invitation.status.in_(OPEN), Invitation.expires_at <= now)
        .values(status="expired", closed_at=now)
        .execution_options(synchronize_session=False)
    )


async def _send(
    uow: UnitOfWork,
    runtime: ServiceRuntime,
    invitation: Invitation,
    org: Organization,
    api_base: str,
) -> None:
    """A new token and a new validity period, and the mail carrying the token."""
    settings = identity_settings(runtime)
    token = secrets.token_urlsafe(32)
    now = _now()
    invitation.token_hash = hash_token(token)
    invitation.sent_at = now
    invitation.expires_at = now + timedelta(days=settings.invitation_valid_days)
    invitation.status = "pending"
    invitation.closed_at = None
    await send_mail(
        uow,
        to=invitation.email,
        key="invitation",
        values={
            "name": invitation.name,
            "inviter_name": invitation.invited_by_name,
            "org_name": org.name,
            "roles": ", ".join(invitation.roles),
            "expires_at": fmt_time(invitation.expires_at),
            "link": f"{settings.console_url.rstrip('/')}/invitations/{token}",
            "accept_url": f"{api_base.rstrip('/')}/v1/invitations/{token}/accept",
        },
    )


async def invite_one(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    org_id: str,
    email: str,
    name: str,
    roles: list[str],
    api_base: str,
) -> dict[str, Any]:
    """One invitation, in its own transaction; a refusal raises (and is audited)."""
    address = email.strip().lower()
    try:
        clean_roles = check_roles(roles)
        async with runtime.unit_of_work() as uow:
            caller = await fresh_caller(uow.session, principal)
            org = await customer_org(uow.session, org_id)
            runtime.authorizer.authorize(caller, "invite", await policy_org(uow.session, org))
            assert not isinstance(caller, ActingSession)  # the policy never lets one invite
            await lock_address(uow, address)
            await _expire_stale(uow, address)
            fate = await fate_of(uow, runtime, caller=caller, org=org, address=address)
            invitation = Invitation(
                id=str(uuid4()),
                org_id=org.id,
                email=address,
                name=name,
                roles=clean_roles,
                invited_by_id=caller.id,
                invited_by_name=caller.name,
                invited_by_email=getattr(caller, "email", ""),
                created_at=_now(),
                sends=1,
            )
            if fate == "send":
                await _send(uow, runtime, invitation, org, api_base)
            else:
                await withhold(
                    uow, runtime, invitation=invitation, org=org, caller=caller, tell_owner=True
                )
            uow.session.add(invitation)
            await uow.session.flush()
            result = read(invitation)
            if fate == "send":
                _publish_sent(uow, invitation, caller)
    except IntegrityError as exc:
        # Two invitations to one address at once: the partial unique index let one through.
        raise Conflict(
            f"{address} already has an open invitation", reason="already_invited"
        ) from exc
    except (Conflict, Invalid) as refused:
        await _record_refusal(runtime, principal, org_id, address, refused.detail)
        raise
    mail_committed(runtime)
    return result


def _publish_sent(uow: UnitOfWork, invitation: Invitation, caller: Principal) -> None:
    uow.publish(
        InvitationSent(
            invitation_id=invitation.id,
            org_id=invitation.org_id,
            email=invitation.email,
            roles=list(invitation.roles),
            expires_at=invitation.expires_at,
            sends=invitation.sends,
        ),
        caller,
        subject_org_id=invitation.org_id,
    )


async def _record_refusal(
    runtime: ServiceRuntime, principal: Principal, org_id: str, email: str, reason: str
) -> None:
    async with runtime.unit_of_work() as uow:
        if await uow.session.get(Organization, org_id) is None:
            return
        uow.publish(
            InvitationRefused(org_id=org_id, email=email, reason=reason[:300]),
            principal,
            subject_org_id=org_id,
        )


async def invite_many(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    org_id: str,
    items: list[tuple[str, str, list[str]]],
    api_base: str,
) -> list[dict[str, Any]]:
    """Each item accepted or refused with its own reason; a denial by policy refuses all."""
    results: list[dict[str, Any]] = []
    seen: set[str] = set()
    for email, name, roles in items:
        address = email.strip().lower()
        if address in seen:
            results.append(
                {
                    "email": address,
                    "status": "refused",
                    "status_code": 409,
                    "detail": f"{address} appears twice in this request",
                }
            )
            continue
        seen.add(address)
        try:
            invitation = await invite_one(
                runtime=runtime,
                principal=principal,
                org_id=org_id,
                email=email,
                name=name,
                roles=roles,
                api_base=api_base,
            )
        except (Conflict, Invalid) as refused:
            results.append(
                {
                    "email": address,
                    "status": "refused",
                    "status_code": refused.status,
                    "detail": refused.detail,
                    "reason": refused.reason,
                }
            )
            continue
        results.append({"email": address, "status": "invited", "invitation": invitation})
    return results


async def list_invitations(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    org_id: str,
    status: str | None,
    limit: int = PEOPLE_PAGE_DEFAULT,
    cursor: str | None = None,
) -> dict[str, Any]:
    """A page of the organisation's invitations, newest first (`items`, `next_cursor`). The
    status is a function of time, so it filters rows as they are read, a batch at a time."""
    if status is not None and status not in STATUSES:
        raise Invalid(f"status must be one of {', '.join(STATUSES)}")
    after = decode_time_cursor(cursor) if cursor else None
    now = _now()
    matching: list[Invitation] = []
    async with runtime.reading() as session:
        caller = await fresh_caller(session, principal)
        org = await customer_org(session, org_id)
        runtime.authorizer.authorize(caller, "invite", await policy_org(session, org))
        while len(matching) <= limit:
            query = select(Invitation).where(Invitation.org_id == org_id)
            if after is not None:
                created, invitation_id = after
                query = query.where(
                    or_(
                        Invitation.created_at < created,
                        and_(Invitation.created_at == created, Invitation.id > invitation_id),
                    )
                )
            batch = (
                await session.scalars(
                    query.order_by(Invitation.created_at.desc(), Invitation.id).limit(limit + 1)
                )
            ).all()
            matching += [i for i in batch if status is None or status_of(i, now) == status]
            if len(batch) <= limit:
                break  # the last rows there are
            after = (batch[-1].created_at, batch[-1].id)
    page, next_cursor = page_of(
        matching, limit=limit, key=lambda i: (i.created_at.isoformat(), i.id)
    )
    return {"items": [read(i) for i in page], "next_cursor": next_cursor}


async def _managed(
    uow: UnitOfWork, runtime: ServiceRuntime, principal: Principal, org_id: str, invitation_id: str
) -> tuple[Principal, Invitation, Organization]:
    caller = await fresh_caller(uow.session, principal)
    org = await customer_org(uow.session, org_id)
    runtime.authorizer.authorize(caller, "invite", await policy_org(uow.session, org))
    invitation = await uow.session.get(Invitation, invitation_id)
    if invitation is None or invitation.org_id != org_id:
        raise NotFound(f"invitation {invitation_id} does not exist")
    return caller, invitation, org


async def resend(
    *, runtime: ServiceRuntime, principal: Principal, org_id: str, invitation_id: str, api_base: str
) -> dict[str, Any]:
    """A new token (the old link stops working) and a new validity period."""
    try:
        async with runtime.unit_of_work() as uow:
            caller, invitation, org = await _managed(uow, runtime, principal, org_id, invitation_id)
            if invitation.status in ("accepted", "revoked"):
                raise Conflict(f"the invitation is {invitation.status}: it cannot be resent")
            # Asked again: the address may have become someone else's (or free) meanwhile.
            await lock_address(uow, invitation.email)
            fate = await fate_of(
                uow,
                runtime,
                caller=caller,
                org=org,
                address=invitation.email,
                exclude_id=invitation.id,
            )
            invitation.sends += 1
            if fate == "send":
                await _send(uow, runtime, invitation, org, api_base)
            else:
                await withhold(
                    uow,
                    runtime,
                    invitation=invitation,
                    org=org,
                    caller=caller,
                    tell_owner=invitation.status != WITHHELD,
                )
            await uow.session.flush()
            result = read(invitation)
            if fate == "send":
                _publish_sent(uow, invitation, caller)
    except IntegrityError as exc:
        raise Conflict(
            "another open invitation exists for this address", reason="already_invited"
        ) from exc
    mail_committed(runtime)
    return result


async def revoke(
    *, runtime: ServiceRuntime, principal: Principal, org_id: str, invitation_id: str
) -> dict[str, Any]:
    async with runtime.unit_of_work() as uow:
        caller, invitation, org = await _managed(uow, runtime, principal, org_id, invitation_id)
        if invitation.status in ("accepted", "revoked"):
            raise Conflict(f"the invitation is already {invitation.status}")
        invitation.status = "revoked"
        invitation.closed_at = _now()
        await uow.session.flush()
        result = read(invitation)
        uow.publish(
            InvitationRevoked(invitation_id=invitation.id, org_id=org.id, email=invitation.email),
            caller,
            subject_org_id=org.id,
        )
    return result
