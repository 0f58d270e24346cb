"""An organisation's orders as callers read them: a page of its history, or one order, each
read as two snapshot statements (no ORM session)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import BindParameter, Select, Table, and_, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common import snapshots
from libs.common.paging import decode_time_cursor, page_of
from libs.common.principals import Principal, org_in_view
from libs.common.resources import OrderBook
from libs.common.runtime import ServiceRuntime
from services.orders.models import Order, OrderCancellation, OrderLine
from services.orders.schemas import (
    ORDERS_PAGE_DEFAULT,
    CancellationRead,
    OrderLineRead,
    OrderPage,
    OrderRead,
    PartyRead,
)

_ORDERS = cast(Table, Order.__table__)
_LINES = cast(Table, OrderLine.__table__)
_CANCELLATIONS = cast(Table, OrderCancellation.__table__)


def _with_cancellations() -> Select[Any]:
    """Orders, each with its cancellation if any (one statement: an order's status and its
    cancellation change in one transaction)."""
    return (
        select(
            _ORDERS.c.id,
            _ORDERS.c.customer_org_id,
            _ORDERS.c.placed_by_id,
            _ORDERS.c.placed_by_name,
            _ORDERS.c.acting_session_id,
            _ORDERS.c.status,
            _ORDERS.c.currency,
            _ORDERS.c.total,
            _ORDERS.c.purchase_order_number,
            _ORDERS.c.created_at,
            _CANCELLATIONS.c.cancelled_by_id,
            _CANCELLATIONS.c.cancelled_by_name,
            _CANCELLATIONS.c.acting_session_id.label("cancelled_in_session_id"),
            _CANCELLATIONS.c.reason,
            _CANCELLATIONS.c.cancelled_at,
        )
        .select_from(_ORDERS.outerjoin(_CANCELLATIONS, _CANCELLATIONS.c.order_id == _ORDERS.c.id))
        .where(_ORDERS.c.customer_org_id == bindparam("org_id"))
    )


def _page(*, by_status: bool, after_cursor: bool) -> snapshots.SnapshotRead:
    """A page of an organisation's orders, newest first."""
    query = _with_cancellations()
    if by_status:
        query = query.where(_ORDERS.c.status == bindparam("status"))
    if after_cursor:
        created: BindParameter[datetime] = bindparam("after_created")
        order_id: BindParameter[str] = bindparam("after_id")
        query = query.where(
            or_(
                _ORDERS.c.created_at < created,
                and_(_ORDERS.c.created_at == created, _ORDERS.c.id > order_id),
            )
        )
    return snapshots.SnapshotRead(
        query.order_by(_ORDERS.c.created_at.desc(), _ORDERS.c.id).limit(bindparam("limit"))
    )


# Every shape of the page read, built once (the history is read on every look at it).
_PAGES = {
    (by_status, after_cursor): _page(by_status=by_status, after_cursor=after_cursor)
    for by_status in (False, True)
    for after_cursor in (False, True)
}
# One order of an organisation (another organisation's is not found).
_ONE = snapshots.SnapshotRead(_with_cancellations().where(_ORDERS.c.id == bindparam("order_id")))
# The lines of the orders on a page. Written with their order and never changed since, so
# a second statement reads them as the first saw their orders.
_LINES_OF = snapshots.SnapshotRead(
    select(
        _LINES.c.order_id,
        _LINES.c.sku,
        _LINES.c.name,
        _LINES.c.quantity,
        _LINES.c.unit_price,
        _LINES.c.line_total,
    )
    .where(_LINES.c.order_id.in_(bindparam("order_ids", expanding=True)))
    .order_by(_LINES.c.order_id, _LINES.c.position)
)


def order_read(
    order: Any, lines: Iterable[Any], cancellation: CancellationRead | None
) -> OrderRead:
    """An order as callers read it, from anything with its columns as attributes (an ORM
    `Order` or a row) and its lines (`OrderLine`s or rows)."""
    return OrderRead(
        id=order.id,
        customer_org_id=order.customer_org_id,
        placed_by=PartyRead(id=order.placed_by_id, name=order.placed_by_name),
        acting_session_id=order.acting_session_id,
        placed_on_behalf=order.acting_session_id is not None,
        items=[
            OrderLineRead(
                sku=line.sku,
                name=line.name,
                quantity=line.quantity,
                unit_price=line.unit_price,
                line_total=line.line_total,
            )
            for line in lines
        ],
        total=order.total,
        currency=order.currency,
        status=order.status,
        purchase_order_number=order.purchase_order_number,
        created_at=order.created_at,
        cancellation=cancellation,
    )


def cancellation_read(
    *,
    cancelled_by_id: str,
    cancelled_by_name: str,
    acting_session_id: str | None,
    reason: str | None,
    cancelled_at: datetime,
) -> CancellationRead:
    return CancellationRead(
        cancelled_by=PartyRead(id=cancelled_by_id, name=cancelled_by_name),
        acting_session_id=acting_session_id,
        cancelled_on_behalf=acting_session_id is not None,
        reason=reason,
        cancelled_at=cancelled_at,
    )


def _cancellation_of(row: Any) -> CancellationRead | None:
    if row.cancelled_by_id is None:
        return None
    return cancellation_read(
        cancelled_by_id=row.cancelled_by_id,
        cancelled_by_name=row.cancelled_by_name,
        acting_session_id=row.cancelled_in_session_id,
        reason=row.reason,
        cancelled_at=row.cancelled_at,
    )


async def list_orders(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    limit: int = ORDERS_PAGE_DEFAULT,
    cursor: str | None = None,
    status: str | None = None,
) -> OrderPage:
    """The organisation's orders, newest first, a page after `cursor`; only those in `status`
    when it is given (the cursor is the sort key, so it walks a filtered list as well)."""
    org_id = org_in_view(principal)
    after = decode_time_cursor(cursor) if cursor else None
    runtime.authorizer.authorize(principal, "read", OrderBook(org_id=org_id))
    return await read_page(
        runtime.read_engine, org_id=org_id, limit=limit, status=status, after=after
    )


async def read_one(engine: AsyncEngine, *, org_id: str, order_id: str) -> OrderRead | None:
    """`org_id`'s order `order_id` with its lines, or None if it has no such order."""
    found = await _ONE.rows(engine, {"org_id": org_id, "order_id": order_id})
    if not found:
        return None
    (row,) = found
    lines = await _LINES_OF.rows(engine, {"order_ids": [row.id]})
    return order_read(row, lines, _cancellation_of(row))


async def read_page(
    engine: AsyncEngine,
    *,
    org_id: str,
    limit: int,
    status: str | None = None,
    after: tuple[datetime, str] | None = None,
) -> OrderPage:
    """Up to `limit` of `org_id`'s orders after `after` (created_at, id), newest first."""
    parameters: dict[str, Any] = {"org_id": org_id, "limit": limit + 1}
    if status is not None:
        parameters["status"] = status
    if after is not None:
        parameters["after_created"], parameters["after_id"] = after
    read = _PAGES[(status is not None, after is not None)]
    found = await read.rows(engine, parameters)
    page, next_cursor = page_of(found, limit=limit, key=lambda o: (o.created_at.isoformat(), o.id))
    lines: dict[str, list[Any]] = {row.id: [] for row in page}
    if page:
        for line in await _LINES_OF.rows(engine, {"order_ids": list(lines)}):
            lines[line.order_id].append(line)
    return OrderPage(
        items=[order_read(row, lines[row.id], _cancellation_of(row)) for row in page],
        next_cursor=next_cursor,
    )
