"""Acting sessions: start, switch, stop and end them (timeouts, revoked rights), each decided by
the policy and announced by an event that revokes the token everywhere."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

from sqlalchemy import ColumnElement, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common import snapshots
from libs.common.authz import Decision
from libs.common.clock import utcnow
from libs.common.db import UtcDateTime, skipping_locked
from libs.common.errors import Forbidden, NotFound, Unauthenticated
from libs.common.events import EventContext
from libs.common.principals import ActingSession, Principal, StaffUser, actor_ref
from libs.common.runtime import ServiceRuntime, UnitOfWork
from libs.common.tokens import claims_of
from services.identity import events
from services.identity.models import ActingSessionRecord, Organization, User
from services.identity.org_people import fresh_caller as _fresh
from services.identity.org_people import policy_org as _policy_org
from services.identity.org_people import principal_of as _principal_of
from services.identity.parts import identity_parts
from services.identity.schemas import (
    ActingContextRead,
    ActingStarted,
    Mode,
    PartyRead,
    SubjectRead,
)
from services.identity.settings import identity_settings


def acting_context(record: ActingSessionRecord) -> ActingContextRead:
    return ActingContextRead(
        session_id=record.id,
        mode="full" if record.mode == "full" else "view",
        expires_at=record.expires_at,
        actor=PartyRead(id=record.actor_id, name=record.actor_name),
        subject=SubjectRead(org_id=record.subject_org_id, name=record.subject_name),
    )


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
    record.ended_at = utcnow()
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
    runtime: ServiceRuntime,
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
    settings = identity_settings(runtime)
    started = utcnow()
    expires_at = started + timedelta(seconds=settings.acting_session_max_seconds)
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
            idle_timeout_seconds=settings.acting_idle_seconds,
            switched_from=switched_from,
        ),
        _acting_principal(record),
    )
    return record


def _started(
    runtime: ServiceRuntime, record: ActingSessionRecord, *, staff: StaffUser, org: Organization
) -> ActingStarted:
    principal = _acting_principal(
        record, actor_generation=staff.generation, org_generation=org.generation
    )
    token = identity_parts(runtime).signer.sign(
        claims_of(principal), expires_at=record.expires_at.timestamp()
    )
    return ActingStarted(access_token=token, **acting_context(record).model_dump())


async def subject_org(session: AsyncSession, org_id: str) -> Organization:
    org = await session.get(Organization, org_id)
    if org is None:
        raise NotFound(f"customer organisation {org_id} does not exist")
    return org


async def start_acting(
    *, runtime: ServiceRuntime, principal: Principal, customer_org_id: str, mode: Mode
) -> ActingStarted:
    async with runtime.unit_of_work() as uow:
        caller = await _fresh(uow.session, principal)
        org = await subject_org(uow.session, customer_org_id)
        decision = await _decide_start(uow, caller=caller, org=org, mode=mode)
        record = None
        if decision.allowed:
            assert isinstance(caller, StaffUser)  # only staff rules grant acting
            record = _open(
                uow,
                runtime,
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
    return _started(runtime, record, staff=caller, org=org)


async def switch_acting(
    *, runtime: ServiceRuntime, principal: Principal, customer_org_id: str, mode: Mode
) -> ActingStarted:
    """End the current session and start one for another customer, in one transaction. The
    new session is decided for the staff member themselves, never stacked on the old one;
    if it is refused, the current session goes on."""
    if not isinstance(principal, ActingSession):
        raise NotFound("this token is not an acting session")
    async with runtime.unit_of_work() as uow:
        current = await live_session(uow.session, principal)
        staff = await _fresh(uow.session, StaffUser(id=current.actor_id, org_id="", name=""))
        org = await subject_org(uow.session, customer_org_id)
        decision = await _decide_start(uow, caller=staff, org=org, mode=mode)
        record = None
        if decision.allowed:
            assert isinstance(staff, StaffUser)
            _end(uow, current, reason="switched")
            record = _open(
                uow,
                runtime,
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
    return _started(runtime, record, staff=staff, org=org)


async def live_session(session: AsyncSession, principal: ActingSession) -> ActingSessionRecord:
    record = await session.get(ActingSessionRecord, principal.id)
    if record is None or record.ended_at is not None:
        raise Unauthenticated("the acting session has ended")
    if record.expires_at <= utcnow():
        raise Unauthenticated("the acting session has expired")
    return record


async def current_acting(*, runtime: ServiceRuntime, principal: Principal) -> ActingContextRead:
    if not isinstance(principal, ActingSession):
        raise NotFound("this token is not an acting session")
    async with runtime.reading() as session:
        return acting_context(await live_session(session, principal))


async def stop_acting(*, runtime: ServiceRuntime, principal: Principal) -> None:
    """Sign in as yourself again; the token stops working everywhere once the revocation spreads."""
    if not isinstance(principal, ActingSession):
        raise NotFound("this token is not an acting session")
    async with runtime.unit_of_work() as uow:
        _end(uow, await live_session(uow.session, principal), reason="stopped")


async def record_activity(*, runtime: ServiceRuntime, session_ids: set[str]) -> None:
    async with runtime.unit_of_work() as uow:
        await uow.session.execute(
            update(ActingSessionRecord)
            .where(ActingSessionRecord.id.in_(session_ids), ActingSessionRecord.ended_at.is_(None))
            .values(last_seen_at=utcnow())
        )


def _due(now: Any, idle_since: Any) -> tuple[ColumnElement[bool], ...]:
    return (
        ActingSessionRecord.ended_at.is_(None),
        or_(ActingSessionRecord.expires_at <= now, ActingSessionRecord.last_seen_at <= idle_since),
    )


# The sweep runs every second and almost always finds nothing: it asks beside the writers
# first (on SQLite a write transaction begins IMMEDIATE, queueing behind the requests' writes
# and waiting out another process's with the loop blocked), in one statement on the bare driver
# (through a session the question cost identity ≈ 1.5 ms of CPU a second).
_ANY_DUE = snapshots.SnapshotRead(
    select(ActingSessionRecord.id)
    .where(*_due(bindparam("now", type_=UtcDateTime), bindparam("idle_since", type_=UtcDateTime)))
    .limit(1)
)


async def end_timed_out_sessions(*, runtime: ServiceRuntime) -> int:
    """End sessions past their maximum lifetime or idle for longer than the idle timeout."""
    now = utcnow()
    idle_since = now - timedelta(seconds=identity_settings(runtime).acting_idle_seconds)
    if not await _ANY_DUE.rows(runtime.read_engine, {"now": now, "idle_since": idle_since}):
        return 0
    due_now = _due(now, idle_since)
    async with runtime.unit_of_work() as uow:
        query = select(ActingSessionRecord).where(*due_now)
        query = skipping_locked(query, runtime.settings.sqlalchemy_url)
        due = (await uow.session.scalars(query.limit(500))).all()
        for record in due:
            _end(uow, record, reason="expired" if record.expires_at <= now else "idle_timeout")
    return len(due)


async def revoke_no_longer_allowed(
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
