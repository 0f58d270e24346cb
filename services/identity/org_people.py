"""Helpers identity's business modules share: the caller as stored now, an organisation as the
policy sees it and its active admins, users and organisations as events and the API carry them."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.errors import NotFound, Unauthenticated
from libs.common.principals import ActingSession, CustomerUser, Principal, StaffUser
from libs.common.resources import CustomerOrg
from libs.contracts.identity import OrgCreated, OrgRecord, UserCreated, UserRecord
from services.identity.models import Caretaker, Organization, User
from services.identity.schemas import OrgRead, UserRead


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


async def active_admins(session: AsyncSession, org_id: str) -> list[User]:
    users = (
        await session.scalars(
            select(User).where(
                User.org_id == org_id, User.active.is_(True), User.kind == "customer"
            )
        )
    ).all()
    return [user for user in users if "admin" in user.roles]


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


# One mapping per row kind, checked by mypy against every shape it builds: the API's read,
# the event's record, the creation event (which carries the record's fields flat).
AsUser = TypeVar("AsUser", UserRead, UserRecord, UserCreated)
AsOrg = TypeVar("AsOrg", OrgRead, OrgRecord, OrgCreated)


def as_user(shape: type[AsUser], user: User) -> AsUser:
    return shape(
        id=user.id,
        email=user.email,
        name=user.name,
        kind=user.kind,
        org_id=user.org_id,
        roles=list(user.roles),
        permissions=list(user.permissions),
        active=user.active,
    )


def as_org(shape: type[AsOrg], org: Organization) -> AsOrg:
    return shape(
        id=org.id,
        name=org.name,
        contract_number=org.contract_number,
        country=org.country,
        status=org.status,
        allow_assistance=org.allow_assistance,
        is_seller=org.is_seller,
    )


def user_record(user: User) -> UserRecord:
    return as_user(UserRecord, user)


def user_read(user: User) -> UserRead:
    return as_user(UserRead, user)


def org_read(org: Organization) -> OrgRead:
    return as_org(OrgRead, org)
