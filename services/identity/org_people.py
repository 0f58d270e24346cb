"""Helpers the customer-organisation modules share (invitations, employees, notifications):
the caller as stored now, an organisation as the policy sees it, a user as events carry it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.errors import NotFound, Unauthenticated
from libs.common.principals import ActingSession, CustomerUser, Principal, StaffUser
from libs.common.resources import CustomerOrg
from libs.contracts.identity import UserRecord
from services.identity.models import Caretaker, Organization, User


def principal_of(user: User) -> Principal:
    if user.kind == "staff":
        return StaffUser(
            id=user.id,
            org_id=user.org_id,
            name=user.name,
            email=user.email,
            roles=list(user.roles),
            permissions=list(user.permissions),
            active=user.active,
            generation=user.generation,
        )
    return CustomerUser(
        id=user.id,
        org_id=user.org_id,
        name=user.name,
        email=user.email,
        roles=list(user.roles),
        active=user.active,
        generation=user.generation,
    )


async def fresh_caller(session: AsyncSession, principal: Principal) -> Principal:
    """The caller with roles and activity as stored now (the token may be older); an acting
    session stays what it is (the policy refuses it everything here)."""
    if isinstance(principal, ActingSession):
        return principal
    user = await session.get(User, principal.id)
    if user is None:
        raise Unauthenticated("the token's user no longer exists")
    return principal_of(user)


async def customer_org(session: AsyncSession, org_id: str) -> Organization:
    org = await session.get(Organization, org_id)
    if org is None:
        raise NotFound(f"organisation {org_id} does not exist")
    return org


async def policy_org(session: AsyncSession, org: Organization) -> CustomerOrg:
    caretakers = (
        await session.scalars(select(Caretaker.user_id).where(Caretaker.org_id == org.id))
    ).all()
    return CustomerOrg(
        id=org.id,
        name=org.name,
        status=org.status,
        allow_assistance=org.allow_assistance,
        caretaker_ids=list(caretakers),
        is_seller=org.is_seller,
    )


def user_record(user: User) -> UserRecord:
    return UserRecord(
        id=user.id,
        email=user.email,
        name=user.name,
        kind=user.kind,
        org_id=user.org_id,
        roles=list(user.roles),
        permissions=list(user.permissions),
        active=user.active,
    )
