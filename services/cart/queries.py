"""Cart's hot statements, built once: the cart in view with its lines and lock in one read, and its writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    String,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common import snapshots
from libs.common.runtime import ServiceRuntime
from libs.common.statements import Statements
from services.cart.models import Cart, CartItem, CartLock, InboxEntry

# Core statements built at import: SQLAlchemy memoises a statement's cache key on the object, so
# executing one of these skips both the construction and the cache-key walk of a fresh select.
_carts = cast(Table, Cart.__table__)
_items = cast(Table, CartItem.__table__)
_locks = cast(Table, CartLock.__table__)
_inbox = cast(Table, InboxEntry.__table__)

_org = bindparam("org_id", type_=String)
_cart_id = bindparam("cart_id", type_=String)

_LOCK_COLUMNS = (
    _locks.c.org_id.label("lock_org_id"),
    _locks.c.holder_id,
    _locks.c.holder_name,
    _locks.c.session_id,
    _locks.c.session_expires_at,
    _locks.c.since,
    _locks.c.last_activity_at,
    _locks.c.version.label("lock_version"),
)
_LINE_COLUMNS = (
    _items.c.sku,
    _items.c.name,
    _items.c.quantity,
    _items.c.unit_price,
    _items.c.currency,
    _items.c.position,
)

# One row per line (one row for an empty or absent cart): the active cart, its lines and the
# lock row, from a one-row anchor so that an absent cart or lock still answers. Only without an
# active cart does the version come from the organisation's newest cart: a new cart continues
# from it (CASE evaluates the subquery only then, on SQLite and PostgreSQL alike).
_anchor = select(_org.label("org_id")).subquery("anchor")
_past = _carts.alias("past")
# The highest version as the first entry from the end of (org_id, version): one index entry
# read, whatever the planner guesses of the organisation's past carts (max() over them read
# every one on PostgreSQL with young statistics).
_latest = func.coalesce(
    select(_past.c.version)
    .where(_past.c.org_id == _anchor.c.org_id)
    .order_by(_past.c.version.desc())
    .limit(1)
    .scalar_subquery(),
    0,
)
CART_IN_VIEW = (
    select(
        _carts.c.id,
        case((_carts.c.id.is_(None), _latest), else_=_carts.c.version).label("version"),
        *_LINE_COLUMNS,
        *_LOCK_COLUMNS,
    )
    .select_from(
        _anchor.outerjoin(_carts, _carts.c.active_org_id == _anchor.c.org_id)
        .outerjoin(_items, _items.c.cart_id == _carts.c.id)
        .outerjoin(_locks, _locks.c.org_id == _anchor.c.org_id)
    )
    .order_by(_items.c.position)
)
_CART_IN_VIEW_NOW = snapshots.SnapshotRead(CART_IN_VIEW)

# The lock row taken FOR UPDATE by every change (a no-op clause on SQLite, whose writers
# queue on BEGIN IMMEDIATE anyway): on PostgreSQL an organisation's changes queue behind it.
LOCK_FOR_UPDATE = select(*_LOCK_COLUMNS).where(_locks.c.org_id == _org).with_for_update()

# A cart by id with its lines, for a checkout.
CART_BY_ID = (
    select(
        _carts.c.id,
        _carts.c.org_id,
        _carts.c.status,
        _carts.c.version,
        *_LINE_COLUMNS,
    )
    .select_from(_carts.outerjoin(_items, _items.c.cart_id == _carts.c.id))
    .where(_carts.c.id == _cart_id)
    .order_by(_items.c.position)
)

# Which of some event ids the inbox holds (their handling committed).
_HANDLED = snapshots.SnapshotRead(
    select(_inbox.c.event_id).where(
        _inbox.c.event_id.in_(bindparam("event_ids", type_=String, expanding=True))
    )
)

TOUCH_LOCK = (
    update(_locks)
    .where(_locks.c.org_id == bindparam("b_org_id"))
    .values(last_activity_at=bindparam("now"), version=_locks.c.version + 1)
)
INSERT_CART = insert(_carts)
UPDATE_CART = (
    update(_carts)
    .where(_carts.c.id == bindparam("b_id"))
    .values(
        version=bindparam("version"),
        updated_at=bindparam("updated_at"),
        status=bindparam("status"),
        active_org_id=bindparam("active_org_id"),
    )
)
INSERT_LINE = insert(_items)
UPDATE_LINE = (
    update(_items)
    .where(and_(_items.c.cart_id == bindparam("b_cart_id"), _items.c.sku == bindparam("b_sku")))
    .values(
        name=bindparam("name"),
        quantity=bindparam("quantity"),
        unit_price=bindparam("unit_price"),
        currency=bindparam("currency"),
        position=bindparam("position"),
    )
)
DELETE_LINE = delete(_items).where(
    and_(_items.c.cart_id == bindparam("b_cart_id"), _items.c.sku == bindparam("b_sku"))
)


@dataclass(frozen=True, slots=True)
class LockRow:
    """The lock row as read; the same attributes as the mapped CartLock."""

    org_id: str
    holder_id: str | None
    holder_name: str | None
    session_id: str | None
    session_expires_at: datetime | None
    since: datetime | None
    last_activity_at: datetime | None
    version: int


@dataclass(slots=True)
class Line:
    """A cart line as read and as the change leaves it."""

    sku: str
    name: str
    quantity: int
    unit_price: Decimal
    currency: str
    position: int

    def values(self) -> tuple[str, int, Decimal, str, int]:
        return (self.name, self.quantity, self.unit_price, self.currency, self.position)


@dataclass(slots=True)
class CartState:
    """A cart as read in one statement; changes mutate `items`, `version` and `status`, and
    `write` stores the difference to what was read."""

    id: str | None
    org_id: str
    version: int
    status: str = "active"
    items: list[Line] = field(default_factory=list)
    lock: LockRow | None = None
    # What was read (sku → values), to write only the lines a change touched.
    read_lines: dict[str, tuple[str, int, Decimal, str, int]] = field(default_factory=dict)
    stored: bool = True


def _lock_of(row: Any) -> LockRow | None:
    if row.lock_org_id is None:
        return None
    return LockRow(
        org_id=row.lock_org_id,
        holder_id=row.holder_id,
        holder_name=row.holder_name,
        session_id=row.session_id,
        session_expires_at=row.session_expires_at,
        since=row.since,
        last_activity_at=row.last_activity_at,
        version=row.lock_version,
    )


def _lines_of(rows: Sequence[Any]) -> list[Line]:
    return [
        Line(
            sku=row.sku,
            name=row.name,
            quantity=row.quantity,
            unit_price=row.unit_price,
            currency=row.currency,
            position=row.position,
        )
        for row in rows
        if row.sku is not None
    ]


def _remember(state: CartState) -> CartState:
    state.read_lines = {line.sku: line.values() for line in state.items}
    return state


async def cart_in_view(connection: Statements, org_id: str) -> CartState:
    """The organisation's active cart (id None if it has none, at the version a new one would
    continue from), its lines in order and its lock row, in one statement."""
    rows = (await connection.execute(CART_IN_VIEW, {"org_id": org_id})).all()
    return _in_view(rows, org_id)


async def cart_in_view_now(runtime: ServiceRuntime, org_id: str) -> CartState:
    """`cart_in_view` read outside a transaction, as its own snapshot (a read that changes
    nothing): on SQLite on the bare driver, see snapshots.SnapshotRead."""
    rows = await _CART_IN_VIEW_NOW.rows(runtime.read_engine, {"org_id": org_id})
    return _in_view(rows, org_id)


def _in_view(rows: Sequence[Any], org_id: str) -> CartState:
    first = rows[0]
    return _remember(
        CartState(
            id=first.id,
            org_id=org_id,
            version=int(first.version),
            items=_lines_of(rows) if first.id is not None else [],
            lock=_lock_of(first),
            stored=first.id is not None,
        )
    )


async def lock_for_update(connection: Statements, org_id: str) -> LockRow | None:
    row = (await connection.execute(LOCK_FOR_UPDATE, {"org_id": org_id})).first()
    return None if row is None else _lock_of(row)


async def cart_by_id(connection: Statements, cart_id: str) -> CartState | None:
    rows = list((await connection.execute(CART_BY_ID, {"cart_id": cart_id})).all())
    if not rows:
        return None
    first = rows[0]
    return _remember(
        CartState(
            id=first.id,
            org_id=first.org_id,
            version=first.version,
            status=first.status,
            items=_lines_of(rows),
        )
    )


async def handled_now(engine: AsyncEngine, event_ids: list[str]) -> set[str]:
    """The ids among `event_ids` whose handling committed, by one snapshot read for the whole
    batch (on PostgreSQL one round trip, not one per id: the safety net takes a batch of
    orders at a time): a hint; the write transaction's inbox insert decides."""
    if not event_ids:
        return set()
    return {row.event_id for row in await _HANDLED.rows(engine, {"event_ids": event_ids})}


async def touch_lock(connection: Statements, org_id: str, now: datetime) -> None:
    await connection.execute(TOUCH_LOCK, {"b_org_id": org_id, "now": now})


async def write(connection: Statements, state: CartState, *, now: datetime) -> None:
    """Store the cart as the change left it: the cart row, then only the lines that changed
    (held back for the commit's round trip on PostgreSQL: nothing reads them before it)."""
    assert state.id is not None
    if state.stored:
        await connection.execute_at_commit(
            UPDATE_CART,
            {
                "b_id": state.id,
                "version": state.version,
                "updated_at": now,
                "status": state.status,
                "active_org_id": state.org_id if state.status == "active" else None,
            },
        )
    else:
        await connection.execute_at_commit(
            INSERT_CART,
            {
                "id": state.id,
                "org_id": state.org_id,
                "active_org_id": state.org_id,
                "status": state.status,
                "version": state.version,
                "created_at": now,
                "updated_at": now,
            },
        )
        state.stored = True
    now_lines = {line.sku: line for line in state.items}
    gone = [
        {"b_cart_id": state.id, "b_sku": sku} for sku in state.read_lines if sku not in now_lines
    ]
    added: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for line in state.items:
        before = state.read_lines.get(line.sku)
        values = line.values()
        if before is None:
            added.append(
                {
                    "cart_id": state.id,
                    "sku": line.sku,
                    "name": line.name,
                    "quantity": line.quantity,
                    "unit_price": line.unit_price,
                    "currency": line.currency,
                    "position": line.position,
                }
            )
        elif before != values:
            changed.append(
                {
                    "b_cart_id": state.id,
                    "b_sku": line.sku,
                    "name": line.name,
                    "quantity": line.quantity,
                    "unit_price": line.unit_price,
                    "currency": line.currency,
                    "position": line.position,
                }
            )
    if gone:
        await connection.execute_at_commit(DELETE_LINE, gone)
    if changed:
        await connection.execute_at_commit(UPDATE_LINE, changed)
    if added:
        await connection.execute_at_commit(INSERT_LINE, added)
    _remember(state)
