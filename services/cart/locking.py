"""The cart lock: a staff member acting in full mode locks the customer's cart; take-over and release."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.clock import utcnow
from libs.common.db import insert_if_absent
from libs.common.errors import Conflict, Forbidden
from libs.common.events import EventContext
from libs.common.principals import ActingSession, Principal, org_in_view
from libs.common.resources import CartLock as CartLockResource
from libs.common.revocation import RevocationSet
from libs.common.runtime import ServiceRuntime, UnitOfWork
from libs.common.statements import Statements
from services.cart import events, queries
from services.cart.models import CartLock
from services.cart.queries import LockRow
from services.cart.schemas import CartLockRead, LockHolderRead
from services.cart.settings import CartSettings, cart_settings

_FREE: dict[str, Any] = {
    "holder_id": None,
    "holder_name": None,
    "session_id": None,
    "session_expires_at": None,
    "since": None,
    "last_activity_at": None,
}


# The lock row as the ORM maps it (lock, take-over, release) or as the hot paths read it.
AnyLock = CartLock | LockRow


# ---------------------------------------------------------------- reading the lock


def is_live(row: AnyLock | None, *, revoked: RevocationSet, now: datetime) -> bool:
    """A lock binds only while its acting session lives: an ended or expired session's lock
    blocks nobody, even before the consumer of `acting_session.ended` clears the row."""
    if row is None or row.session_id is None:
        return False
    if row.session_id in revoked:
        return False
    return row.session_expires_at is None or row.session_expires_at > now


def holds(principal: Principal, row: AnyLock) -> bool:
    return isinstance(principal, ActingSession) and row.session_id == principal.id


def lock_read(row: AnyLock) -> CartLockRead:
    assert row.holder_id and row.holder_name and row.session_id and row.since
    return CartLockRead(
        holder=LockHolderRead(id=row.holder_id, name=row.holder_name),
        session_id=row.session_id,
        since=row.since,
        last_activity_at=row.last_activity_at or row.since,
    )


def live_lock(row: AnyLock | None, *, revoked: RevocationSet, now: datetime) -> CartLockRead | None:
    if row is None or not is_live(row, revoked=revoked, now=now):
        return None
    return lock_read(row)


def _idle_seconds(row: CartLock, now: datetime) -> int:
    last = row.last_activity_at or row.since or now
    return max(0, int((now - last).total_seconds()))


def _holder_data(row: CartLock, now: datetime) -> events.LockHolder:
    """A holder as events record it."""
    return events.LockHolder(
        id=row.holder_id,
        name=row.holder_name,
        session_id=row.session_id,
        since=row.since,
        last_activity_at=row.last_activity_at,
        idle_seconds=_idle_seconds(row, now),
    )


def locked(row: AnyLock) -> Conflict:
    """The 409 every change by someone other than the holder gets: it names the holder."""
    read = lock_read(row)
    return Conflict(
        f"the cart is locked by {read.holder.name}: only they change it until they unlock it "
        "or their acting session ends",
        lock=read.model_dump(mode="json"),
    )


def guard_order(
    principal: Principal, row: AnyLock | None, *, revoked: RevocationSet, now: datetime
) -> None:
    """Placing an order empties the cart: while a staff member holds its lock, only they may
    order from it (409 naming the holder)."""
    if row is None or not is_live(row, revoked=revoked, now=now) or holds(principal, row):
        return
    read = lock_read(row)
    raise Conflict(
        f"the cart is locked by {read.holder.name}: only they place an order from it until "
        "they unlock it or their acting session ends",
        lock=read.model_dump(mode="json"),
    )


async def current_lock(session: AsyncSession, org_id: str) -> CartLock | None:
    """The lock row as committed now (never a stale copy from this session's identity map)."""
    return await session.scalar(
        select(CartLock).where(CartLock.org_id == org_id).execution_options(populate_existing=True)
    )


async def _lock_row(uow: UnitOfWork, org_id: str) -> CartLock:
    """The organisation's lock row, created (free) on first use."""
    await insert_if_absent(uow.session, CartLock, {"org_id": org_id, "version": 0}, key=["org_id"])
    row = await current_lock(uow.session, org_id)
    assert row is not None
    return row


async def _compare_and_set(
    session: AsyncSession, *, org_id: str, expected_version: int, values: dict[str, Any]
) -> bool:
    """Write `values` only if nobody changed the lock since it was read at `expected_version`.

    On PostgreSQL a concurrent writer makes this UPDATE wait, then re-check the version and
    match nothing: of two racers exactly one sees rowcount 1."""
    result = await session.execute(
        update(CartLock)
        .where(CartLock.org_id == org_id, CartLock.version == expected_version)
        .values(version=expected_version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    return cast(CursorResult[Any], result).rowcount == 1


# ---------------------------------------------------------------- every cart change


async def guard_change(
    uow: UnitOfWork,
    connection: Statements,
    *,
    settings: CartSettings,
    principal: Principal,
    org_id: str,
    row: LockRow | None,
) -> LockRow | None:
    """Every cart change, once it queued behind the organisation's other changes (`row` is the
    lock as read after that): refuse anyone but a live lock's holder (409), and keep the
    holder's lock from going idle. Answers the lock row as the change leaves it."""
    now = utcnow()
    if row is not None and is_live(row, revoked=uow.runtime.revoked, now=now):
        if not holds(principal, row):
            raise locked(row)
        # A take-over decided on the idle time read before this use must not succeed.
        await queries.touch_lock(connection, org_id, now)
        return replace(row, last_activity_at=now, version=row.version + 1)
    if settings.require_lock_for_acting_changes and isinstance(principal, ActingSession):
        raise Conflict(
            "lock the cart before changing it (POST /v1/cart/lock): this deployment requires "
            "staff to hold the lock",
            lock=None,
        )
    return row


# ---------------------------------------------------------------- lock, take over, unlock


def _acting(principal: Principal) -> ActingSession:
    # The default policy grants locks only to acting sessions; a lock needs a session to end with.
    if not isinstance(principal, ActingSession):
        raise Forbidden("only an acting session can hold the cart lock", reason=None)
    return principal


def _resource(row: CartLock, settings: CartSettings, now: datetime) -> CartLockResource:
    return CartLockResource(
        org_id=row.org_id,
        holder_id=row.holder_id,
        holder_session_id=row.session_id,
        idle_seconds=_idle_seconds(row, now),
        takeover_idle_seconds=settings.lock_takeover_idle_seconds,
    )


async def _acquire(
    uow: UnitOfWork, *, row: CartLock, principal: Principal, now: datetime
) -> CartLock:
    """Make `principal` the holder if the lock is still as read; else 409 naming the winner."""
    session = _acting(principal)
    won = await _compare_and_set(
        uow.session,
        org_id=row.org_id,
        expected_version=row.version,
        values={
            "holder_id": session.actor_id,
            "holder_name": session.actor_name,
            "session_id": session.id,
            "session_expires_at": session.expires_at,
            "since": now,
            "last_activity_at": now,
        },
    )
    current = await current_lock(uow.session, row.org_id)
    assert current is not None
    if not won:
        if is_live(current, revoked=uow.runtime.revoked, now=now) and not holds(session, current):
            raise locked(current)
        raise Conflict("the cart lock changed at the same moment; try again", lock=None)
    return current


async def _lock_free_or_own(
    uow: UnitOfWork, *, row: CartLock, principal: Principal, now: datetime
) -> CartLockRead:
    """Lock a cart nobody (alive) holds; re-locking one's own lock only marks activity."""
    if holds(principal, row) and is_live(row, revoked=uow.runtime.revoked, now=now):
        await _compare_and_set(
            uow.session,
            org_id=row.org_id,
            expected_version=row.version,
            values={"last_activity_at": now},
        )
        current = await current_lock(uow.session, row.org_id)
        assert current is not None
        return lock_read(current)
    # A lock left by an ended session is replaced; the event says whose it was.
    ended = _holder_data(row, now) if row.session_id else None
    current = await _acquire(uow, row=row, principal=principal, now=now)
    uow.publish(
        events.CartLockAcquired(
            org_id=row.org_id, holder=_holder_data(current, now), replaced_ended_lock=ended
        ),
        principal,
    )
    return lock_read(current)


async def lock_cart(*, runtime: ServiceRuntime, principal: Principal) -> CartLockRead:
    """Lock the subject's cart for the calling acting session; 409 names a live holder."""
    settings = cart_settings(runtime)
    org_id = org_in_view(principal)
    resource = CartLockResource(
        org_id=org_id, takeover_idle_seconds=settings.lock_takeover_idle_seconds
    )
    runtime.authorizer.authorize(principal, "lock", resource)
    async with runtime.unit_of_work() as uow:
        row = await _lock_row(uow, org_id)
        now = utcnow()
        if is_live(row, revoked=runtime.revoked, now=now) and not holds(principal, row):
            raise locked(row)
        return await _lock_free_or_own(uow, row=row, principal=principal, now=now)


async def take_over_lock(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    holder_session_id: str | None,
) -> CartLockRead:
    """Take over the lock of the acting session `holder_session_id` (the holder the caller
    saw) where the policy allows it: by role, because it is idle, or because it is one's own.
    Without `holder_session_id` (contract v1) the current holder is taken over, whoever it is.

    Naming the holder makes a take-over a compare-and-set from the caller's point of view:
    of two staff members taking over the same lock at once, exactly one wins and the other
    gets 409 naming the winner, on SQLite (which serialises them) as on PostgreSQL."""
    settings = cart_settings(runtime)
    org_id = org_in_view(principal)
    async with runtime.unit_of_work() as uow:
        row = await _lock_row(uow, org_id)
        now = utcnow()
        resource = _resource(row, settings, now)
        # Whoever may not even hold the lock is refused first, whatever the lock's state.
        runtime.authorizer.authorize(principal, "lock", resource)
        if not is_live(row, revoked=runtime.revoked, now=now) or holds(principal, row):
            # Nothing (left) to take over: the lock is free or already the caller's.
            return await _lock_free_or_own(uow, row=row, principal=principal, now=now)
        if holder_session_id is not None and row.session_id != holder_session_id:
            # Someone else got the lock since the caller looked: they decide again, knowing who.
            raise locked(row)
        runtime.authorizer.authorize(principal, "takeover", resource)
        previous = _holder_data(row, now)
        current = await _acquire(uow, row=row, principal=principal, now=now)
        uow.publish(
            events.CartLockTakenOver(
                org_id=org_id,
                previous_holder=previous,
                holder=_holder_data(current, now),
                idle_seconds=resource.idle_seconds,
                takeover_idle_seconds=resource.takeover_idle_seconds,
            ),
            principal,
        )
        return lock_read(current)


async def unlock_cart(*, runtime: ServiceRuntime, principal: Principal) -> None:
    """The holder releases the lock; releasing a cart nobody holds does nothing."""
    org_id = org_in_view(principal)
    runtime.authorizer.authorize(principal, "unlock", CartLockResource(org_id=org_id))
    async with runtime.unit_of_work() as uow:
        row = await current_lock(uow.session, org_id)
        now = utcnow()
        if row is None or not is_live(row, revoked=runtime.revoked, now=now):
            return
        if not holds(principal, row):
            raise locked(row)
        previous = _holder_data(row, now)
        won = await _compare_and_set(
            uow.session, org_id=org_id, expected_version=row.version, values=_FREE
        )
        if not won:
            current = await current_lock(uow.session, org_id)
            if current is not None and is_live(current, revoked=runtime.revoked, now=now):
                raise locked(current)
            return
        uow.publish(
            events.CartLockReleased(org_id=org_id, holder=previous, reason="released"), principal
        )


async def release_locks_of_ended_session(
    *, uow: UnitOfWork, context: EventContext, session_id: str, end_reason: str | None
) -> int:
    """An acting session ended: every lock it held ends with it (handlers.py calls this)."""
    rows = (
        await uow.session.scalars(
            select(CartLock).where(CartLock.session_id == session_id).with_for_update()
        )
    ).all()
    now = utcnow()
    for row in rows:
        previous = _holder_data(row, now)
        for name, value in _FREE.items():
            setattr(row, name, value)
        row.version += 1
        uow.publish(
            events.CartLockReleased(
                org_id=row.org_id,
                holder=previous,
                reason="session_ended",
                session_end_reason=end_reason,
            ),
            context,
        )
    return len(rows)


async def queue_behind_changes(uow: UnitOfWork, connection: Statements, org_id: str) -> None:
    """Take the organisation's lock row FOR UPDATE, created (free) on first use: every cart
    change and checkout queues behind it (PostgreSQL; SQLite's writers queue on BEGIN)."""
    if await queries.lock_for_update(connection, org_id) is None:
        await insert_if_absent(
            uow.session, CartLock, {"org_id": org_id, "version": 0}, key=["org_id"]
        )
        await queries.lock_for_update(connection, org_id)
