"""Identity's business functions: login, who may be acted for, acting sessions, administration."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import structlog
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from libs.common.authz import Authorizer, Decision
from libs.common.db import is_sqlite
from libs.common.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated
from libs.common.events import EventContext
from libs.common.policy_filter import Untranslatable, sql_filter
from libs.common.principals import ActingSession, CustomerUser, Principal, StaffUser, actor_ref
from libs.common.resources import Account, Administration, CustomerOrg
from libs.common.runtime import ServiceRuntime, UnitOfWork
from libs.common.tokens import claims_of
from services.identity import events
from services.identity.keys import Signer
from services.identity.models import ActingSessionRecord, Caretaker, Organization, User
from services.identity.org_people import fresh_caller as _fresh
from services.identity.org_people import policy_org as _policy_org
from services.identity.org_people import principal_of as _principal_of
from services.identity.passwords import (
    DUMMY_HASH,
    AddressGate,
    PasswordPool,
    check_password_policy,
    hash_password,
)
from services.identity.schemas import (
    CUSTOMER_ROLES,
    STAFF_PERMISSIONS,
    STAFF_ROLES,
    ActingContextRead,
    ActingSessionPage,
    ActingSessionRead,
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

log = structlog.get_logger("identity")

ADMINISTRATION = Administration(area="identity")
# Start-up work (the seller organisation, the first admin) is done by the platform itself.
SYSTEM_ID = "system"


@dataclass
class Identity:
    """What identity's functions need besides the shared runtime."""

    runtime: ServiceRuntime
    signer: Signer
    settings: IdentitySettings
    # scrypt off the event loop, on a few threads (login.py, user creation, password change).
    passwords: PasswordPool = field(default_factory=PasswordPool)
    login_gate: AddressGate = field(default_factory=AddressGate)


def _now() -> datetime:
    return datetime.now(UTC)


def _login_principal(user: User, org: Organization, *, login_session_id: str) -> Principal:
    """What a login token says: the user's rights now, their generations, a new login session."""
    principal = _principal_of(user)
    if isinstance(principal, CustomerUser):
        principal.org_generation = org.generation
    principal.login_session_id = login_session_id
    return principal


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


async def _policy_orgs(
    session: AsyncSession, orgs: Sequence[Organization]
) -> dict[str, CustomerOrg]:
    """`_policy_org` for many organisations, with one query for their caretakers."""
    caretakers: dict[str, list[str]] = {org.id: [] for org in orgs}
    if orgs:
        rows = await session.execute(
            select(Caretaker.org_id, Caretaker.user_id).where(Caretaker.org_id.in_(caretakers))
        )
        for org_id, user_id in rows:
            caretakers[org_id].append(user_id)
    return {
        org.id: CustomerOrg(
            id=org.id,
            name=org.name,
            status=org.status,
            allow_assistance=org.allow_assistance,
            caretaker_ids=caretakers[org.id],
            is_seller=org.is_seller,
        )
        for org in orgs
    }


def _may_act_for(authorizer: Authorizer, caller: Principal) -> ColumnElement[bool] | None:
    """The organisations the policy could let `caller` act for (`act_view`, which full
    acting implies), as SQL derived from the policy's own conditions; None when the policy
    says something the filter cannot translate (then every organisation is asked)."""
    try:
        return sql_filter(
            authorizer.conditions(caller, "act_view", CustomerOrg),
            resource=CustomerOrg,
            columns={
                "id": Organization.id,
                "name": Organization.name,
                "status": Organization.status,
                "allow_assistance": Organization.allow_assistance,
                "is_seller": Organization.is_seller,
            },
            relations={
                "caretaker_ids": lambda user_id: Organization.id.in_(
                    select(Caretaker.org_id).where(Caretaker.user_id == user_id)
                )
            },
        )
    except Untranslatable as exc:
        log.warning("customer_filter_untranslatable", error=str(exc))
        return None


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
            uow.publish(events.OrgCreated.model_validate(_org_read(seller).model_dump()), system)
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
            uow.publish(events.UserCreated.model_validate(_user_read(admin).model_dump()), system)


# ---------------------------------------------------------------- login and self


async def issue_login_token(*, identity: Identity, user: User, org: Organization) -> TokenRead:
    """The access token of a user whose password login.py has just checked."""
    lifetime = identity.settings.access_token_seconds
    principal = _login_principal(user, org, login_session_id=str(uuid4()))
    token = identity.signer.sign(claims_of(principal), expires_at=time.time() + lifetime)
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
        may_allow = _may_act_for(authorizer, caller)
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
            if may_allow is not None:
                query = query.where(may_allow)
            orgs = (
                await session.scalars(
                    query.order_by(Organization.name, Organization.id).limit(chunk)
                )
            ).all()
            resources = await _policy_orgs(session, orgs)
            for org in orgs:
                # The filter only narrows the candidates: the policy still decides each one.
                resource = resources[org.id]
                if authorizer.decide(caller, "act_view", resource).allowed:
                    # The modes the policy allows now, so a page offers only those buttons.
                    full = authorizer.decide(caller, "act_full", resource).allowed
                    found.append(
                        CustomerRead(
                            id=org.id,
                            name=org.name,
                            contract_number=org.contract_number,
                            country=org.country,
                            status=org.status,
                            modes=["full", "view"] if full else ["view"],
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


def _acting_principal(
    record: ActingSessionRecord, *, actor_generation: int = 0, org_generation: int = 0
) -> ActingSession:
    return ActingSession(
        id=record.id,
        actor_id=record.actor_id,
        actor_name=record.actor_name,
        actor_org_id=record.actor_org_id,
        subject_org_id=record.subject_org_id,
        subject_name=record.subject_name,
        mode=record.mode,
        expires_at=record.expires_at,
        actor_roles=list(record.actor_roles),
        login_session_id=record.login_session_id,
        actor_generation=actor_generation,
        org_generation=org_generation,
    )


def _session_context(
    record: ActingSessionRecord, *, revision: str, actor: Principal | None = None
) -> EventContext:
    """An event about a session: its subject and id, and whoever caused it (by default the
    session's own staff member)."""
    actor_id, actor_org_id = (
        actor_ref(actor) if actor is not None else (record.actor_id, record.actor_org_id)
    )
    return EventContext(
        actor_id=actor_id,
        actor_org_id=actor_org_id,
        subject_org_id=record.subject_org_id,
        subject_user_id=None,
        acting_session_id=record.id,
        policy_revision=revision,
    )


def _end(
    uow: UnitOfWork,
    record: ActingSessionRecord,
    *,
    reason: str,
    detail: str | None = None,
    actor: Principal | None = None,
) -> None:
    """End a session and say so; identity's consumer of the event revokes the token everywhere."""
    record.ended_at = _now()
    record.end_reason = reason
    record.end_detail = detail
    uow.publish(
        events.ActingSessionEnded(
            session_id=record.id, reason=reason, detail=detail, mode=record.mode
        ),
        _session_context(record, revision=uow.runtime.authorizer.revision, actor=actor),
    )


async def end_live_sessions(
    uow: UnitOfWork,
    *,
    reason: str,
    detail: str,
    actor: Principal,
    actor_id: str | None = None,
    login_session_id: str | None = None,
) -> int:
    """End every live session of a staff member, or of one login session; their tokens are
    refused everywhere once the events are projected into the revocation bucket."""
    await uow.session.flush()
    query = select(ActingSessionRecord).where(ActingSessionRecord.ended_at.is_(None))
    if actor_id is not None:
        query = query.where(ActingSessionRecord.actor_id == actor_id)
    if login_session_id is not None:
        query = query.where(ActingSessionRecord.login_session_id == login_session_id)
    records = (await uow.session.scalars(query)).all()
    for record in records:
        _end(uow, record, reason=reason, detail=detail, actor=actor)
    return len(records)


async def _decide_start(
    uow: UnitOfWork, *, caller: Principal, org: Organization, mode: Mode
) -> Decision:
    """Ask the policy; a refusal is recorded in the same transaction."""
    action = "act_full" if mode == "full" else "act_view"
    policy_org = await _policy_org(uow.session, org)
    decision = uow.runtime.authorizer.decide(caller, action, policy_org)
    if not decision.allowed:
        uow.publish(
            events.ActingSessionDenied(customer_org_id=org.id, mode=mode, reason=decision.reason),
            caller,
            subject_org_id=org.id,
        )
    return decision


def _open(
    uow: UnitOfWork,
    identity: Identity,
    *,
    staff: StaffUser,
    org: Organization,
    mode: Mode,
    decision: Decision,
    login_session_id: str | None,
    not_after: datetime | None,
    switched_from: str | None = None,
) -> ActingSessionRecord:
    """`not_after`: the login session's expiry, or the first session's of a chain of switches;
    an acting session never outlives either."""
    started = _now()
    expires_at = started + timedelta(seconds=identity.settings.acting_session_max_seconds)
    if not_after is not None:
        expires_at = min(expires_at, not_after)
    record = ActingSessionRecord(
        id=str(uuid4()),
        actor_id=staff.id,
        actor_name=staff.name,
        actor_org_id=staff.org_id,
        subject_org_id=org.id,
        subject_name=org.name,
        mode=mode,
        login_session_id=login_session_id,
        actor_roles=list(staff.roles),
        policy_revision=decision.revision,
        started_at=started,
        last_seen_at=started,
        expires_at=expires_at,
    )
    uow.session.add(record)
    uow.publish(
        events.ActingSessionStarted(
            session_id=record.id,
            mode=mode,
            customer_org_id=org.id,
            customer_name=org.name,
            actor_name=staff.name,
            expires_at=record.expires_at,
            idle_timeout_seconds=identity.settings.acting_idle_seconds,
            switched_from=switched_from,
        ),
        _acting_principal(record),
    )
    return record


def _started(
    identity: Identity, record: ActingSessionRecord, *, staff: StaffUser, org: Organization
) -> ActingStarted:
    principal = _acting_principal(
        record, actor_generation=staff.generation, org_generation=org.generation
    )
    token = identity.signer.sign(claims_of(principal), expires_at=record.expires_at.timestamp())
    return ActingStarted(access_token=token, **_context(record).model_dump())


async def _customer_org(session: AsyncSession, org_id: str) -> Organization:
    org = await session.get(Organization, org_id)
    if org is None:
        raise NotFound(f"customer organisation {org_id} does not exist")
    return org


async def start_acting(
    *, identity: Identity, principal: Principal, customer_org_id: str, mode: Mode
) -> ActingStarted:
    async with identity.runtime.unit_of_work() as uow:
        caller = await _fresh(uow.session, principal)
        org = await _customer_org(uow.session, customer_org_id)
        decision = await _decide_start(uow, caller=caller, org=org, mode=mode)
        record = None
        if decision.allowed:
            assert isinstance(caller, StaffUser)  # only staff rules grant acting
            record = _open(
                uow,
                identity,
                staff=caller,
                org=org,
                mode=mode,
                decision=decision,
                login_session_id=principal.login_session_id,
                not_after=principal.expires_at,
            )
    # The denial is committed (and so audited) before the refusal goes out.
    if record is None:
        raise Forbidden(f"not allowed to act as {org.name}", reason=decision.reason)
    assert isinstance(caller, StaffUser)
    return _started(identity, record, staff=caller, org=org)


async def switch_acting(
    *, identity: Identity, principal: Principal, customer_org_id: str, mode: Mode
) -> ActingStarted:
    """End the current session and start one for another customer, in one transaction. The
    new session is decided for the staff member themselves, never stacked on the old one;
    if it is refused, the current session goes on."""
    if not isinstance(principal, ActingSession):
        raise NotFound("this token is not an acting session")
    async with identity.runtime.unit_of_work() as uow:
        current = await _live_session(uow.session, principal)
        staff = await _fresh(uow.session, StaffUser(id=current.actor_id, org_id="", name=""))
        org = await _customer_org(uow.session, customer_org_id)
        decision = await _decide_start(uow, caller=staff, org=org, mode=mode)
        record = None
        if decision.allowed:
            assert isinstance(staff, StaffUser)
            _end(uow, current, reason="switched")
            record = _open(
                uow,
                identity,
                staff=staff,
                org=org,
                mode=mode,
                decision=decision,
                # A chain of switches shares the first session's bounds: switching never
                # extends a session (nor a stolen acting token's life).
                login_session_id=current.login_session_id,
                not_after=current.expires_at,
                switched_from=current.id,
            )
    if record is None:
        raise Forbidden(f"not allowed to act as {org.name}", reason=decision.reason)
    assert isinstance(staff, StaffUser)
    return _started(identity, record, staff=staff, org=org)


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
    """Sign in as yourself again; the token stops working everywhere once the revocation spreads."""
    if not isinstance(principal, ActingSession):
        raise NotFound("this token is not an acting session")
    async with identity.runtime.unit_of_work() as uow:
        _end(uow, await _live_session(uow.session, principal), reason="stopped")


async def record_activity(*, runtime: ServiceRuntime, session_ids: set[str]) -> None:
    async with runtime.unit_of_work() as uow:
        await uow.session.execute(
            update(ActingSessionRecord)
            .where(ActingSessionRecord.id.in_(session_ids), ActingSessionRecord.ended_at.is_(None))
            .values(last_seen_at=_now())
        )


async def end_timed_out_sessions(*, identity: Identity) -> int:
    """End sessions past their maximum lifetime or idle for longer than the idle timeout."""
    now = _now()
    idle_since = now - timedelta(seconds=identity.settings.acting_idle_seconds)
    runtime = identity.runtime
    async with runtime.unit_of_work() as uow:
        query = select(ActingSessionRecord).where(
            ActingSessionRecord.ended_at.is_(None),
            or_(
                ActingSessionRecord.expires_at <= now,
                ActingSessionRecord.last_seen_at <= idle_since,
            ),
        )
        if not is_sqlite(runtime.settings.sqlalchemy_url):
            query = query.with_for_update(skip_locked=True)
        due = (await uow.session.scalars(query.limit(500))).all()
        for record in due:
            _end(uow, record, reason="expired" if record.expires_at <= now else "idle_timeout")
    return len(due)


async def _revoke_no_longer_allowed(
    uow: UnitOfWork, *, caller: Principal, actor_id: str | None = None, org_id: str | None = None
) -> None:
    """After a change to staff, caretakers or an organisation, ask the policy again about every
    live session it touches; end those it no longer allows, with the policy's reason."""
    session = uow.session
    await session.flush()
    query = select(ActingSessionRecord).where(ActingSessionRecord.ended_at.is_(None))
    if actor_id:
        query = query.where(ActingSessionRecord.actor_id == actor_id)
    if org_id:
        query = query.where(ActingSessionRecord.subject_org_id == org_id)
    for record in (await session.scalars(query)).all():
        user = await session.get(User, record.actor_id)
        org = await session.get(Organization, record.subject_org_id)
        if user is None or org is None:
            _end(uow, record, reason="revoked", detail="actor or customer no longer exists")
            continue
        action = "act_full" if record.mode == "full" else "act_view"
        decision = uow.runtime.authorizer.decide(
            _principal_of(user), action, await _policy_org(session, org)
        )
        if not decision.allowed:
            _end(uow, record, reason="revoked", detail=decision.reason, actor=caller)


def _session_read(record: ActingSessionRecord) -> ActingSessionRead:
    return ActingSessionRead(
        session_id=record.id,
        actor=PartyRead(id=record.actor_id, name=record.actor_name),
        subject=SubjectRead(org_id=record.subject_org_id, name=record.subject_name),
        mode="full" if record.mode == "full" else "view",
        started_at=record.started_at,
        expires_at=record.expires_at,
        last_seen_at=record.last_seen_at,
        ended_at=record.ended_at,
        end_reason=record.end_reason,
        end_detail=record.end_detail,
    )


async def list_acting_sessions(
    *, identity: Identity, principal: Principal, org_id: str, limit: int, cursor: str | None
) -> ActingSessionPage:
    """Transparency: an organisation's admins see every session staff held on it."""
    async with identity.runtime.reading() as session:
        caller = await _fresh(session, principal)
        org = await _customer_org(session, org_id)
        identity.runtime.authorizer.authorize(
            caller, "read_acting_sessions", await _policy_org(session, org)
        )
        query = select(ActingSessionRecord).where(ActingSessionRecord.subject_org_id == org_id)
        if cursor:
            started, session_id = _decode_cursor(cursor)
            try:
                after = datetime.fromisoformat(started)
            except ValueError as exc:
                raise Invalid("cursor is not one this service issued") from exc
            if after.tzinfo is None:
                raise Invalid("cursor is not one this service issued")
            query = query.where(
                or_(
                    ActingSessionRecord.started_at < after,
                    (ActingSessionRecord.started_at == after)
                    & (ActingSessionRecord.id < session_id),
                )
            )
        records = (
            await session.scalars(
                query.order_by(
                    ActingSessionRecord.started_at.desc(), ActingSessionRecord.id.desc()
                ).limit(limit + 1)
            )
        ).all()
    page = records[:limit]
    next_cursor = (
        _encode_cursor(page[-1].started_at.isoformat(), page[-1].id)
        if len(records) > limit and page
        else None
    )
    return ActingSessionPage(items=[_session_read(r) for r in page], next_cursor=next_cursor)


async def read_org(*, identity: Identity, principal: Principal, org_id: str) -> OrgRead:
    """An organisation's settings (consent included), for whoever may see its acting sessions:
    its admins, platform admins, security reviewers."""
    async with identity.runtime.reading() as session:
        caller = await _fresh(session, principal)
        org = await _customer_org(session, org_id)
        identity.runtime.authorizer.authorize(
            caller, "read_acting_sessions", await _policy_org(session, org)
        )
    return _org_read(org)


async def own_acting_session(
    *, identity: Identity, principal: Principal, session_id: str
) -> ActingSessionRead:
    """One acting session the caller held, as they themselves signed in (not acting): how and
    why it ended, for the page that tells them. Anyone else's session is 404, as if absent."""
    if isinstance(principal, ActingSession):
        raise NotFound(f"acting session {session_id} not found")
    async with identity.runtime.reading() as session:
        record = await session.get(ActingSessionRecord, session_id)
    if record is None or record.actor_id != principal.id:
        raise NotFound(f"acting session {session_id} not found")
    return _session_read(record)


# ---------------------------------------------------------------- the customer's own settings


async def set_consent(
    *, identity: Identity, principal: Principal, org_id: str, allow_assistance: bool
) -> OrgRead:
    """Company-level consent to remote assistance: the customer's admin (or a platform admin)
    decides; withdrawing it ends every session on the organisation."""
    async with identity.runtime.unit_of_work() as uow:
        caller = await _fresh(uow.session, principal)
        org = await _customer_org(uow.session, org_id)
        identity.runtime.authorizer.authorize(
            caller, "set_consent", await _policy_org(uow.session, org)
        )
        org.allow_assistance = allow_assistance
        read = _org_read(org)
        uow.publish(
            events.ConsentChanged(org_id=org.id, allow_assistance=allow_assistance),
            caller,
            subject_org_id=org.id,
        )
        await _revoke_no_longer_allowed(uow, caller=caller, org_id=org.id)
    return read


def _own_user_id(principal: Principal) -> str:
    return principal.actor_id if isinstance(principal, ActingSession) else principal.id


async def change_password(
    *, identity: Identity, principal: Principal, current_password: str, new_password: str
) -> TokenRead:
    """Ends every other session of the user (tokens of the old generation are refused
    everywhere); the caller gets a token of the new generation for the same login session."""
    # scrypt runs on the bounded pool, outside the write transaction (on SQLite that holds
    # the database's one write lock): never on the event loop.
    new_hash = await identity.passwords.hash(new_password)
    async with identity.runtime.reading() as session:
        holder = await session.get(User, _own_user_id(principal))
        stored = holder.password_hash if holder is not None else DUMMY_HASH
    current_ok = await identity.passwords.verify(current_password, stored)
    async with identity.runtime.unit_of_work() as uow:
        caller = await _fresh(uow.session, principal)
        identity.runtime.authorizer.authorize(
            caller,
            "change_credentials",
            Account(user_id=principal.id, org_id=principal.org_id)
            if not isinstance(principal, ActingSession)
            else Account(user_id=principal.actor_id, org_id=principal.actor_org_id),
        )
        user = await uow.session.get(User, caller.id)
        assert user is not None  # _fresh found it
        if not current_ok or user.password_hash != stored:
            raise Invalid("the current password is wrong")
        weak = check_password_policy(
            new_password, email=user.email, min_length=identity.settings.password_min_length
        )
        if weak:
            raise Invalid(weak, reason="weak_password")
        user.password_hash = new_hash
        user.generation += 1
        uow.publish(
            events.PasswordChanged(user_id=user.id, generation=user.generation, active=user.active),
            caller,
        )
        await end_live_sessions(
            uow,
            reason="revoked",
            detail="the staff member's password changed",
            actor=caller,
            actor_id=user.id,
        )
        org = await uow.session.get(Organization, user.org_id)
        assert org is not None  # a foreign key
        renewed = _login_principal(
            user, org, login_session_id=principal.login_session_id or str(uuid4())
        )
    # The login session keeps its expiry: a password change does not lengthen it.
    expires_at = (principal.expires_at or _now()).timestamp()
    token = identity.signer.sign(claims_of(renewed), expires_at=expires_at)
    return TokenRead(access_token=token, expires_in=max(0, int(expires_at - time.time())))


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
            created = events.OrgCreated.model_validate(read.model_dump())
            uow.publish(created, caller, subject_org_id=org.id)
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
            if "status" in changes and changes["status"] != org.status:
                # Customer tokens issued before are refused everywhere (handlers.project_standing).
                org.generation += 1
            for field, value in changes.items():
                setattr(org, field, value)
            await uow.session.flush()
            read = _org_read(org)
            uow.publish(
                events.OrgUpdated(
                    org=events.OrgRecord.model_validate(read.model_dump()),
                    changed=sorted(changes),
                    generation=org.generation,
                ),
                caller,
                subject_org_id=org.id,
            )
            await _revoke_no_longer_allowed(uow, caller=caller, org_id=org.id)
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
    session: AsyncSession, identity: Identity, caller: Principal, org: Organization
) -> None:
    """Platform admins manage every user; a customer's admin manages their own organisation's."""
    identity.runtime.authorizer.authorize(caller, "manage_users", await _policy_org(session, org))


def _refuse_taken_email(
    uow: UnitOfWork, identity: Identity, *, caller: Principal, org: Organization, body: UserCreate
) -> UserRead:
    """A platform admin is told the address is taken (409). Anyone else (a customer's admin)
    gets the answer a creation gives, so that the response does not say whether the address
    exists anywhere, staff included; nothing is stored and security reviewers see the attempt."""
    if identity.runtime.authorizer.decide(caller, "manage", ADMINISTRATION).allowed:
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


async def create_user(*, identity: Identity, principal: Principal, body: UserCreate) -> UserRead:
    _check_roles(body.kind, body.roles, body.permissions)
    email = body.email.strip().lower()
    # Who may create users here is decided first: a caller the policy refuses learns nothing
    # of the password rules. The transaction below asks again (rights may change meanwhile).
    if body.org_id is not None:
        async with identity.runtime.reading() as session:
            target = await session.get(Organization, body.org_id)
            if target is not None:
                await _users_org(session, identity, await _fresh(session, principal), target)
    weak = check_password_policy(
        body.password, email=email, min_length=identity.settings.password_min_length
    )
    if weak:
        raise Invalid(weak, reason="weak_password")
    password_hash = await identity.passwords.hash(body.password)
    try:
        async with identity.runtime.unit_of_work() as uow:
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
            await _users_org(session, identity, caller, org)
            if body.kind == "staff" and not org.is_seller:
                raise Invalid("staff belong to the seller organisation")
            if body.kind == "customer" and org.is_seller:
                raise Invalid("customer users belong to a customer organisation")
            taken = await session.scalar(select(User.id).where(User.email == email))
            if taken is not None:
                return _refuse_taken_email(uow, identity, caller=caller, org=org, body=body)
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
            read = _user_read(user)
            uow.publish(
                events.UserCreated.model_validate(read.model_dump()),
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
        session = uow.session
        caller = await _fresh(session, principal)
        user = await session.get(User, user_id)
        if user is None:
            raise NotFound(f"user {user_id} does not exist")
        org = await session.get(Organization, user.org_id)
        assert org is not None  # a foreign key
        await _users_org(session, identity, caller, org)
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
        read = _user_read(user)
        uow.publish(
            events.UserUpdated(
                user=events.UserRecord.model_validate(read.model_dump()),
                changed=sorted(body.model_fields_set),
                generation=user.generation,
            ),
            caller,
            subject_org_id=None if org.is_seller else org.id,
        )
        if user.kind == "staff":
            # The policy's reason where it now refuses; the rest carry the old rights.
            await _revoke_no_longer_allowed(uow, caller=caller, actor_id=user.id)
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
                events.CaretakerAssigned(org_id=org_id, user_id=user_id),
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
            events.CaretakerRemoved(org_id=org_id, user_id=user_id),
            caller,
            subject_org_id=org_id,
        )
        await _revoke_no_longer_allowed(uow, caller=caller, actor_id=user_id, org_id=org_id)
