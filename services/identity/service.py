"""Identity's business functions: login, who may be acted for, acting sessions, administration."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated
from libs.common.principals import ActingSession, CustomerUser, Principal, StaffUser
from libs.common.resources import Administration, CustomerOrg
from libs.common.runtime import ServiceRuntime
from libs.common.tokens import claims_of
from services.identity import events
from services.identity.keys import Signer
from services.identity.models import ActingSessionRecord, Caretaker, Organization, User
from services.identity.passwords import DUMMY_HASH, hash_password, verify_password
from services.identity.schemas import (
    CUSTOMER_ROLES,
    STAFF_PERMISSIONS,
    STAFF_ROLES,
    ActingContextRead,
    ActingStarted,
    CustomerPage,
    CustomerRead,
    MeRead,
    Mode,
    OrgCreate,
    OrgRead,
    OrgUpdate,
    PartyRead,
    SubjectRead,
    TokenRead,
    UserCreate,
    UserRead,
    UserUpdate,
)
from services.identity.settings import IdentitySettings

ADMINISTRATION = Administration(area="identity")
# Start-up work (the seller organisation, the first admin) is done by the platform itself.
SYSTEM_ID = "system"


@dataclass
class Identity:
    """What identity's functions need besides the shared runtime."""

    runtime: ServiceRuntime
    signer: Signer
    settings: IdentitySettings


def _now() -> datetime:
    return datetime.now(UTC)


def _staff(user: User) -> StaffUser:
    return StaffUser(
        id=user.id,
        org_id=user.org_id,
        name=user.name,
        email=user.email,
        roles=list(user.roles),
        permissions=list(user.permissions),
        active=user.active,
    )


def _customer(user: User) -> CustomerUser:
    return CustomerUser(
        id=user.id,
        org_id=user.org_id,
        name=user.name,
        email=user.email,
        roles=list(user.roles),
        active=user.active,
    )


def _principal_of(user: User) -> Principal:
    return _staff(user) if user.kind == "staff" else _customer(user)


def _org_read(org: Organization) -> OrgRead:
    return OrgRead(
        id=org.id,
        name=org.name,
        contract_number=org.contract_number,
        country=org.country,
        status=org.status,
        allow_assistance=org.allow_assistance,
        is_seller=org.is_seller,
    )


def _user_read(user: User) -> UserRead:
    return UserRead(
        id=user.id,
        email=user.email,
        name=user.name,
        kind=user.kind,
        org_id=user.org_id,
        roles=list(user.roles),
        permissions=list(user.permissions),
        active=user.active,
    )


def _context(record: ActingSessionRecord) -> ActingContextRead:
    return ActingContextRead(
        session_id=record.id,
        mode="full" if record.mode == "full" else "view",
        expires_at=record.expires_at,
        actor=PartyRead(id=record.actor_id, name=record.actor_name),
        subject=SubjectRead(org_id=record.subject_org_id, name=record.subject_name),
    )


async def _fresh(session: AsyncSession, principal: Principal) -> Principal:
    """The caller as the database knows them now: roles, permissions and activity may
    have changed since the token was issued. An acting session stays what it is."""
    if isinstance(principal, ActingSession):
        return principal
    user = await session.get(User, principal.id)
    if user is None:
        raise Unauthenticated("the token's user no longer exists")
    return _principal_of(user)


async def _policy_org(session: AsyncSession, org: Organization) -> CustomerOrg:
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


# ---------------------------------------------------------------- start-up


async def bootstrap(*, runtime: ServiceRuntime, settings: IdentitySettings) -> None:
    """Create the seller organisation and the first platform admin if they are missing."""
    async with runtime.unit_of_work() as uow:
        session = uow.session
        seller = await session.scalar(select(Organization).where(Organization.is_seller))
        system = StaffUser(id=SYSTEM_ID, org_id="", name="onbehalf")
        if seller is None:
            seller = Organization(
                id=str(uuid4()),
                name=settings.seller_org_name,
                contract_number=settings.seller_contract_number,
                country=settings.seller_country,
                is_seller=True,
                status="active",
                allow_assistance=False,
            )
            session.add(seller)
            await session.flush()
            uow.publish(events.ORG_CREATED, _org_read(seller).model_dump(), system)
        email = settings.admin_email.strip().lower()
        admin = await session.scalar(select(User).where(User.email == email))
        if admin is None:
            admin = User(
                id=str(uuid4()),
                email=email,
                name=settings.admin_name,
                password_hash=hash_password(settings.admin_password),
                kind="staff",
                org_id=seller.id,
                roles=["platform_admin"],
                permissions=sorted(STAFF_PERMISSIONS),
                active=True,
            )
            session.add(admin)
            uow.publish(events.USER_CREATED, _user_read(admin).model_dump(), system)


# ---------------------------------------------------------------- login and self


async def login(*, identity: Identity, email: str, password: str) -> TokenRead:
    async with identity.runtime.reading() as session:
        user = await session.scalar(select(User).where(User.email == email.strip().lower()))
        org = await session.get(Organization, user.org_id) if user else None
    if user is None:
        verify_password(password, DUMMY_HASH)
        raise Unauthenticated("wrong email or password")
    if not verify_password(password, user.password_hash):
        raise Unauthenticated("wrong email or password")
    if not user.active:
        raise Unauthenticated("this user is deactivated")
    if org is None or org.status != "active":
        raise Unauthenticated("this user's organisation is not active")
    lifetime = identity.settings.access_token_seconds
    token = identity.signer.sign(claims_of(_principal_of(user)), expires_at=time.time() + lifetime)
    return TokenRead(access_token=token, expires_in=lifetime)


async def me(*, identity: Identity, principal: Principal) -> MeRead:
    async with identity.runtime.reading() as session:
        if isinstance(principal, ActingSession):
            record = await _live_session(session, principal)
            user = await session.get(User, principal.actor_id)
            acting_as: ActingContextRead | None = _context(record)
        else:
            user = await session.get(User, principal.id)
            acting_as = None
    if user is None:
        raise Unauthenticated("the token's user no longer exists")
    return MeRead(
        id=user.id,
        email=user.email,
        name=user.name,
        kind="staff" if user.kind == "staff" else "customer",
        org_id=user.org_id,
        roles=list(user.roles),
        permissions=list(user.permissions),
        acting_as=acting_as,
    )


# ---------------------------------------------------------------- customers to act for


def _encode_cursor(name: str, org_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([name, org_id]).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        name, org_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError) as exc:
        raise Invalid("cursor is not one this service issued") from exc
    if not isinstance(name, str) or not isinstance(org_id, str):
        raise Invalid("cursor is not one this service issued")
    return name, org_id


async def list_customers(
    *,
    identity: Identity,
    principal: Principal,
    q: str | None,
    limit: int,
    cursor: str | None,
) -> CustomerPage:
    """Organisations the caller may act for (in any mode), by name; the policy filters."""
    after = _decode_cursor(cursor) if cursor else None
    authorizer = identity.runtime.authorizer
    found: list[CustomerRead] = []
    chunk = 200
    async with identity.runtime.reading() as session:
        caller = await _fresh(session, principal)
        while len(found) <= limit:
            query = select(Organization).where(Organization.is_seller.is_(False))
            if q:
                pattern = f"%{q.strip().lower()}%"
                query = query.where(
                    or_(
                        func.lower(Organization.name).like(pattern),
                        func.lower(Organization.contract_number).like(pattern),
                        func.lower(Organization.country) == q.strip().lower(),
                    )
                )
            if after:
                query = query.where(
                    or_(
                        Organization.name > after[0],
                        (Organization.name == after[0]) & (Organization.id > after[1]),
                    )
                )
            orgs = (
                await session.scalars(
                    query.order_by(Organization.name, Organization.id).limit(chunk)
                )
            ).all()
            for org in orgs:
                resource = await _policy_org(session, org)
                if authorizer.decide(caller, "act_view", resource).allowed:
                    found.append(
                        CustomerRead(
                            id=org.id,
                            name=org.name,
                            contract_number=org.contract_number,
                            country=org.country,
                            status=org.status,
                        )
                    )
                    if len(found) > limit:
                        break
            if len(orgs) < chunk:
                break
            after = (orgs[-1].name, orgs[-1].id)
    page = found[:limit]
    more = len(found) > limit
    return CustomerPage(
        items=page,
        next_cursor=_encode_cursor(page[-1].name, page[-1].id) if more and page else None,
    )


# ---------------------------------------------------------------- acting sessions


async def start_acting(
    *, identity: Identity, principal: Principal, customer_org_id: str, mode: Mode
) -> ActingStarted:
    runtime = identity.runtime
    action = "act_full" if mode == "full" else "act_view"
    async with runtime.unit_of_work() as uow:
        session = uow.session
        caller = await _fresh(session, principal)
        org = await session.get(Organization, customer_org_id)
        if org is None:
            raise NotFound(f"customer organisation {customer_org_id} does not exist")
        decision = runtime.authorizer.decide(caller, action, await _policy_org(session, org))
        if not decision.allowed:
            uow.publish(
                events.ACTING_SESSION_DENIED,
                {"customer_org_id": org.id, "mode": mode, "reason": decision.reason},
                caller,
                subject_org_id=org.id,
            )
            denied = Forbidden(f"not allowed to act as {org.name}", reason=decision.reason)
        else:
            denied = None
            assert isinstance(caller, StaffUser)  # only staff rules grant acting
            started = _now()
            record = ActingSessionRecord(
                id=str(uuid4()),
                actor_id=caller.id,
                actor_name=caller.name,
                actor_org_id=caller.org_id,
                subject_org_id=org.id,
                subject_name=org.name,
                mode=mode,
                policy_revision=decision.revision,
                started_at=started,
                expires_at=started
                + timedelta(seconds=identity.settings.acting_session_max_seconds),
            )
            session.add(record)
            acting = ActingSession(
                id=record.id,
                actor_id=caller.id,
                actor_name=caller.name,
                actor_org_id=caller.org_id,
                subject_org_id=org.id,
                subject_name=org.name,
                mode=mode,
                expires_at=record.expires_at,
            )
            uow.publish(
                events.ACTING_SESSION_STARTED,
                {
                    "session_id": record.id,
                    "mode": mode,
                    "customer_org_id": org.id,
                    "customer_name": org.name,
                    "actor_name": caller.name,
                    "expires_at": record.expires_at.isoformat(),
                },
                acting,
            )
    # The denial is committed (and audited) before the refusal goes out.
    if denied is not None:
        raise denied
    token = identity.signer.sign(claims_of(acting), expires_at=record.expires_at.timestamp())
    return ActingStarted(access_token=token, **_context(record).model_dump())


async def _live_session(session: AsyncSession, principal: ActingSession) -> ActingSessionRecord:
    record = await session.get(ActingSessionRecord, principal.id)
    if record is None or record.ended_at is not None:
        raise Unauthenticated("the acting session has ended")
    if record.expires_at <= _now():
        raise Unauthenticated("the acting session has expired")
    return record


async def current_acting(*, identity: Identity, principal: Principal) -> ActingContextRead:
    if not isinstance(principal, ActingSession):
        raise NotFound("this token is not an acting session")
    async with identity.runtime.reading() as session:
        return _context(await _live_session(session, principal))


async def stop_acting(*, identity: Identity, principal: Principal) -> None:
    """End the session; its token stops working everywhere once the revocation spreads."""
    if not isinstance(principal, ActingSession):
        raise NotFound("this token is not an acting session")
    async with identity.runtime.unit_of_work() as uow:
        record = await _live_session(uow.session, principal)
        record.ended_at = _now()
        record.end_reason = "stopped"
        uow.publish(
            events.ACTING_SESSION_ENDED,
            {"session_id": record.id, "reason": "stopped", "mode": record.mode},
            principal,
        )


# ---------------------------------------------------------------- administration


async def _admin(session: AsyncSession, identity: Identity, principal: Principal) -> Principal:
    caller = await _fresh(session, principal)
    identity.runtime.authorizer.authorize(caller, "manage", ADMINISTRATION)
    return caller


async def create_org(*, identity: Identity, principal: Principal, body: OrgCreate) -> OrgRead:
    try:
        async with identity.runtime.unit_of_work() as uow:
            caller = await _admin(uow.session, identity, principal)
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
            read = _org_read(org)
            uow.publish(events.ORG_CREATED, read.model_dump(), caller, subject_org_id=org.id)
    except IntegrityError as exc:
        raise Conflict(f"contract number {body.contract_number} is already taken") from exc
    return read


async def update_org(
    *, identity: Identity, principal: Principal, org_id: str, body: OrgUpdate
) -> OrgRead:
    changes = body.model_dump(exclude_unset=True)
    try:
        async with identity.runtime.unit_of_work() as uow:
            caller = await _admin(uow.session, identity, principal)
            org = await uow.session.get(Organization, org_id)
            if org is None:
                raise NotFound(f"organisation {org_id} does not exist")
            if org.is_seller and ("status" in changes or "allow_assistance" in changes):
                raise Invalid("the seller organisation's status and consent are fixed")
            for field, value in changes.items():
                if value is None:
                    raise Invalid(f"{field} cannot be null")
                setattr(org, field, value)
            await uow.session.flush()
            read = _org_read(org)
            uow.publish(
                events.ORG_UPDATED,
                {"org": read.model_dump(), "changed": sorted(changes)},
                caller,
                subject_org_id=org.id,
            )
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


async def create_user(*, identity: Identity, principal: Principal, body: UserCreate) -> UserRead:
    _check_roles(body.kind, body.roles, body.permissions)
    password_hash = hash_password(body.password)
    try:
        async with identity.runtime.unit_of_work() as uow:
            session = uow.session
            caller = await _admin(session, identity, principal)
            seller = await session.scalar(select(Organization).where(Organization.is_seller))
            assert seller is not None  # created at start-up
            org_id = body.org_id or (seller.id if body.kind == "staff" else None)
            if org_id is None:
                raise Invalid("a customer user needs the org_id of a customer organisation")
            org = await session.get(Organization, org_id)
            if org is None:
                raise NotFound(f"organisation {org_id} does not exist")
            if body.kind == "staff" and not org.is_seller:
                raise Invalid("staff belong to the seller organisation")
            if body.kind == "customer" and org.is_seller:
                raise Invalid("customer users belong to a customer organisation")
            user = User(
                id=str(uuid4()),
                email=body.email.strip().lower(),
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
            read = _user_read(user)
            uow.publish(
                events.USER_CREATED,
                read.model_dump(),
                caller,
                subject_org_id=None if org.is_seller else org.id,
            )
    except IntegrityError as exc:
        raise Conflict(f"a user with email {body.email} already exists") from exc
    return read


async def update_user(
    *, identity: Identity, principal: Principal, user_id: str, body: UserUpdate
) -> UserRead:
    changes = body.model_dump(exclude_unset=True)
    async with identity.runtime.unit_of_work() as uow:
        caller = await _admin(uow.session, identity, principal)
        user = await uow.session.get(User, user_id)
        if user is None:
            raise NotFound(f"user {user_id} does not exist")
        for field, value in changes.items():
            if value is None:
                raise Invalid(f"{field} cannot be null")
        _check_roles(
            user.kind,
            changes.get("roles", list(user.roles)),
            changes.get("permissions", list(user.permissions)),
        )
        if "password" in changes:
            user.password_hash = hash_password(changes.pop("password"))
        for field in ("roles", "permissions"):
            if field in changes:
                changes[field] = sorted(set(changes[field]))
        for field, value in changes.items():
            setattr(user, field, value)
        await uow.session.flush()
        read = _user_read(user)
        uow.publish(
            events.USER_UPDATED,
            {"user": read.model_dump(), "changed": sorted(body.model_fields_set)},
            caller,
        )
    return read


async def assign_caretaker(
    *, identity: Identity, principal: Principal, org_id: str, user_id: str
) -> None:
    async with identity.runtime.unit_of_work() as uow:
        session = uow.session
        caller = await _admin(session, identity, principal)
        org = await session.get(Organization, org_id)
        user = await session.get(User, user_id)
        if org is None or org.is_seller:
            raise NotFound(f"customer organisation {org_id} does not exist")
        if user is None or user.kind != "staff":
            raise NotFound(f"staff member {user_id} does not exist")
        if await session.get(Caretaker, (org_id, user_id)) is None:
            session.add(Caretaker(org_id=org_id, user_id=user_id))
            uow.publish(
                events.CARETAKER_ASSIGNED,
                {"org_id": org_id, "user_id": user_id},
                caller,
                subject_org_id=org_id,
            )


async def remove_caretaker(
    *, identity: Identity, principal: Principal, org_id: str, user_id: str
) -> None:
    async with identity.runtime.unit_of_work() as uow:
        session = uow.session
        caller = await _admin(session, identity, principal)
        link = await session.get(Caretaker, (org_id, user_id))
        if link is None:
            raise NotFound(f"{user_id} is not a caretaker of {org_id}")
        await session.delete(link)
        uow.publish(
            events.CARETAKER_REMOVED,
            {"org_id": org_id, "user_id": user_id},
            caller,
            subject_org_id=org_id,
        )
