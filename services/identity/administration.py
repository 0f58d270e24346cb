"""Administration: customer organisations, users and caretakers, by platform admins (and a
customer's admin for its own users); a change that takes rights away ends the sessions it touches."""

from __future__ import annotations

from uuid import uuid4

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.errors import Conflict, Invalid, NotFound
from libs.common.principals import Principal
from libs.common.resources import Administration
from libs.common.runtime import ServiceRuntime, UnitOfWork
from services.identity import events
from services.identity.acting_sessions import end_live_sessions, revoke_no_longer_allowed
from services.identity.models import Caretaker, Organization, User
from services.identity.org_people import as_org, as_user, org_read, user_read
from services.identity.org_people import fresh_caller as _fresh
from services.identity.org_people import policy_org as _policy_org
from services.identity.parts import identity_parts
from services.identity.passwords import check_password_policy, hash_password
from services.identity.schemas import (
    CUSTOMER_ROLES,
    STAFF_PERMISSIONS,
    STAFF_ROLES,
    OrgCreate,
    OrgRead,
    OrgUpdate,
    UserCreate,
    UserRead,
    UserUpdate,
)
from services.identity.settings import identity_settings

ADMINISTRATION = Administration(area="identity")


async def _admin(session: AsyncSession, runtime: ServiceRuntime, principal: Principal) -> Principal:
    caller = await _fresh(session, principal)
    runtime.authorizer.authorize(caller, "manage", ADMINISTRATION)
    return caller


async def create_org(*, runtime: ServiceRuntime, principal: Principal, body: OrgCreate) -> OrgRead:
    try:
        async with runtime.unit_of_work() as uow:
            caller = await _admin(uow.session, runtime, principal)
            org = Organization(
                id=str(uuid4()),
                name=body.name,
                contract_number=body.contract_number,
                country=body.country,
                status="active",
                allow_assistance=body.allow_assistance,
                is_seller=False,
            )
            uow.session.add(org)
            await uow.session.flush()
            read = org_read(org)
            created = as_org(events.OrgCreated, org)
            uow.publish(created, caller, subject_org_id=org.id)
    except IntegrityError as exc:
        raise Conflict(f"contract number {body.contract_number} is already taken") from exc
    return read


async def update_org(
    *, runtime: ServiceRuntime, principal: Principal, org_id: str, body: OrgUpdate
) -> OrgRead:
    changes = body.model_dump(exclude_unset=True)
    try:
        async with runtime.unit_of_work() as uow:
            caller = await _admin(uow.session, runtime, principal)
            org = await uow.session.get(Organization, org_id)
            if org is None:
                raise NotFound(f"organisation {org_id} does not exist")
            if org.is_seller and ("status" in changes or "allow_assistance" in changes):
                raise Invalid("the seller organisation's status and consent are fixed")
            for field, value in changes.items():
                if value is None:
                    raise Invalid(f"{field} cannot be null")
            if "status" in changes and changes["status"] != org.status:
                # Customer tokens issued before are refused everywhere (handlers.project_standing).
                org.generation += 1
            for field, value in changes.items():
                setattr(org, field, value)
            await uow.session.flush()
            read = org_read(org)
            uow.publish(
                events.OrgUpdated(
                    org=as_org(events.OrgRecord, org),
                    changed=sorted(changes),
                    generation=org.generation,
                ),
                caller,
                subject_org_id=org.id,
            )
            await revoke_no_longer_allowed(uow, caller=caller, org_id=org.id)
    except IntegrityError as exc:
        raise Conflict("that contract number is already taken") from exc
    return read


def _check_roles(kind: str, roles: list[str], permissions: list[str]) -> None:
    allowed = STAFF_ROLES if kind == "staff" else CUSTOMER_ROLES
    unknown = sorted(set(roles) - allowed)
    if unknown:
        raise Invalid(f"unknown {kind} roles: {', '.join(unknown)}; allowed: {sorted(allowed)}")
    if kind == "customer" and permissions:
        raise Invalid("customer users hold roles, not staff permissions")
    unknown = sorted(set(permissions) - STAFF_PERMISSIONS)
    if unknown:
        raise Invalid(f"unknown permissions: {', '.join(unknown)}")


async def _users_org(
    session: AsyncSession, runtime: ServiceRuntime, caller: Principal, org: Organization
) -> None:
    """Platform admins manage every user; a customer's admin manages their own organisation's."""
    runtime.authorizer.authorize(caller, "manage_users", await _policy_org(session, org))


def _refuse_taken_email(
    uow: UnitOfWork,
    runtime: ServiceRuntime,
    *,
    caller: Principal,
    org: Organization,
    body: UserCreate,
) -> UserRead:
    """A platform admin is told the address is taken (409). Anyone else (a customer's admin)
    gets the answer a creation gives, so that the response does not say whether the address
    exists anywhere, staff included; nothing is stored and security reviewers see the attempt."""
    if runtime.authorizer.decide(caller, "manage", ADMINISTRATION).allowed:
        raise Conflict(f"a user with email {body.email} already exists")
    uow.publish(
        events.UserCreationRefused(org_id=org.id, reason="email_taken"),
        caller,
        subject_org_id=None if org.is_seller else org.id,
    )
    return UserRead(
        id=str(uuid4()),
        email=body.email.strip().lower(),
        name=body.name,
        kind=body.kind,
        org_id=org.id,
        roles=sorted(set(body.roles)),
        permissions=sorted(set(body.permissions)),
        active=True,
    )


async def create_user(
    *, runtime: ServiceRuntime, principal: Principal, body: UserCreate
) -> UserRead:
    _check_roles(body.kind, body.roles, body.permissions)
    email = body.email.strip().lower()
    # Who may create users here is decided first: a caller the policy refuses learns nothing
    # of the password rules. The transaction below asks again (rights may change meanwhile).
    if body.org_id is not None:
        async with runtime.reading() as session:
            target = await session.get(Organization, body.org_id)
            if target is not None:
                await _users_org(session, runtime, await _fresh(session, principal), target)
    weak = check_password_policy(
        body.password, email=email, min_length=identity_settings(runtime).password_min_length
    )
    if weak:
        raise Invalid(weak, reason="weak_password")
    password_hash = await identity_parts(runtime).passwords.hash(body.password)
    try:
        async with runtime.unit_of_work() as uow:
            session = uow.session
            caller = await _fresh(session, principal)
            seller = await session.scalar(select(Organization).where(Organization.is_seller))
            assert seller is not None  # created at start-up
            org_id = body.org_id or (seller.id if body.kind == "staff" else None)
            if org_id is None:
                raise Invalid("a customer user needs the org_id of a customer organisation")
            org = await session.get(Organization, org_id)
            if org is None:
                raise NotFound(f"organisation {org_id} does not exist")
            await _users_org(session, runtime, caller, org)
            if body.kind == "staff" and not org.is_seller:
                raise Invalid("staff belong to the seller organisation")
            if body.kind == "customer" and org.is_seller:
                raise Invalid("customer users belong to a customer organisation")
            taken = await session.scalar(select(User.id).where(User.email == email))
            if taken is not None:
                return _refuse_taken_email(uow, runtime, caller=caller, org=org, body=body)
            user = User(
                id=str(uuid4()),
                email=email,
                name=body.name,
                password_hash=password_hash,
                kind=body.kind,
                org_id=org.id,
                roles=sorted(set(body.roles)),
                permissions=sorted(set(body.permissions)),
                active=True,
            )
            session.add(user)
            await session.flush()
            read = user_read(user)
            uow.publish(
                as_user(events.UserCreated, user),
                caller,
                subject_org_id=None if org.is_seller else org.id,
            )
    except IntegrityError as exc:
        raise Conflict(f"a user with email {body.email} already exists") from exc
    return read


async def update_user(
    *, runtime: ServiceRuntime, principal: Principal, user_id: str, body: UserUpdate
) -> UserRead:
    changes = body.model_dump(exclude_unset=True)
    async with runtime.unit_of_work() as uow:
        session = uow.session
        caller = await _fresh(session, principal)
        user = await session.get(User, user_id)
        if user is None:
            raise NotFound(f"user {user_id} does not exist")
        org = await session.get(Organization, user.org_id)
        assert org is not None  # a foreign key
        await _users_org(session, runtime, caller, org)
        for field, value in changes.items():
            if value is None:
                raise Invalid(f"{field} cannot be null")
        _check_roles(
            user.kind,
            changes.get("roles", list(user.roles)),
            changes.get("permissions", list(user.permissions)),
        )
        rights_changed = "password" in changes
        if "password" in changes:
            user.password_hash = hash_password(changes.pop("password"))
        for field in ("roles", "permissions"):
            if field in changes:
                changes[field] = sorted(set(changes[field]))
        for field, value in changes.items():
            if field in ("roles", "permissions", "active") and value != getattr(user, field):
                rights_changed = True
            setattr(user, field, value)
        if rights_changed:
            # Tokens issued before carry the old rights: every service refuses them from now.
            user.generation += 1
        await session.flush()
        read = user_read(user)
        uow.publish(
            events.UserUpdated(
                user=as_user(events.UserRecord, user),
                changed=sorted(body.model_fields_set),
                generation=user.generation,
            ),
            caller,
            subject_org_id=None if org.is_seller else org.id,
        )
        if user.kind == "staff":
            # The policy's reason where it now refuses; the rest carry the old rights.
            await revoke_no_longer_allowed(uow, caller=caller, actor_id=user.id)
            if rights_changed:
                await end_live_sessions(
                    uow,
                    reason="revoked",
                    detail="the staff member's rights changed",
                    actor=caller,
                    actor_id=user.id,
                )
    return read


async def assign_caretaker(
    *, runtime: ServiceRuntime, principal: Principal, org_id: str, user_id: str
) -> None:
    async with runtime.unit_of_work() as uow:
        session = uow.session
        caller = await _admin(session, runtime, principal)
        org = await session.get(Organization, org_id)
        user = await session.get(User, user_id)
        if org is None or org.is_seller:
            raise NotFound(f"customer organisation {org_id} does not exist")
        if user is None or user.kind != "staff":
            raise NotFound(f"staff member {user_id} does not exist")
        if await session.get(Caretaker, (org_id, user_id)) is None:
            session.add(Caretaker(org_id=org_id, user_id=user_id))
            uow.publish(
                events.CaretakerAssigned(org_id=org_id, user_id=user_id),
                caller,
                subject_org_id=org_id,
            )


async def remove_caretaker(
    *, runtime: ServiceRuntime, principal: Principal, org_id: str, user_id: str
) -> None:
    async with runtime.unit_of_work() as uow:
        session = uow.session
        caller = await _admin(session, runtime, principal)
        link = await session.get(Caretaker, (org_id, user_id))
        if link is None:
            raise NotFound(f"{user_id} is not a caretaker of {org_id}")
        await session.delete(link)
        uow.publish(
            events.CaretakerRemoved(org_id=org_id, user_id=user_id),
            caller,
            subject_org_id=org_id,
        )
        await revoke_no_longer_allowed(uow, caller=caller, actor_id=user_id, org_id=org_id)
