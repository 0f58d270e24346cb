"""Orders' business functions: place an order from the cart at catalog prices, read one, cancel."""

from __future__ import annotations

import hashlib
import json
from typing import Any, cast
from uuid import uuid4

from sqlalchemy import CursorResult, Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from libs.common import snapshots
from libs.common.checkout import request_checkout, request_order_snapshot
from libs.common.clock import utcnow
from libs.common.errors import (
    Conflict,
    Invalid,
    NotFound,
)
from libs.common.principals import ActingSession, Principal, org_in_view
from libs.common.resources import OrderBook, PlacedOrder
from libs.common.runtime import ServiceRuntime
from libs.contracts.cart import CheckoutOrder
from services.orders import budgets, events, history
from services.orders.history import cancellation_read, order_read
from services.orders.models import Order, OrderCancellation, OrderLine
from services.orders.schemas import (
    OrderCreate,
    OrderLineRead,
    OrderRead,
    PartyRead,
)

# What a cancel may end: a placed order, or one that still awaits a customer admin's approval.
CANCELLABLE = ("placed", budgets.AWAITING)

# Placing an order runs these on every request: built once, with bind parameters (Core rows,
# no ORM identity map or unit of work on the hot path).
ORDERS = cast(Table, Order.__table__)
ORDER_LINES = cast(Table, OrderLine.__table__)
_BY_KEY = select(ORDERS.c.id, ORDERS.c.request_hash).where(
    ORDERS.c.customer_org_id == bindparam("org_id"),
    ORDERS.c.idempotency_key == bindparam("key"),
)
_BY_KEY_NOW = snapshots.SnapshotRead(_BY_KEY)
# The two questions every order asks before it is placed, in one read: was its key used
# already (a replay), and has its organisation any budget.
_BEFORE_PLACING = snapshots.SnapshotRead(
    select(
        _BY_KEY.with_only_columns(ORDERS.c.id).scalar_subquery().label("id"),
        _BY_KEY.with_only_columns(ORDERS.c.request_hash).scalar_subquery().label("request_hash"),
        budgets.ANY_BUDGET.exists().label("has_budget"),
    )
)
_INSERT_ORDER = insert(ORDERS)
_INSERT_LINES = insert(ORDER_LINES)


def _read(order: Order) -> OrderRead:
    done = order.cancellation
    cancellation = (
        None
        if done is None
        else cancellation_read(
            cancelled_by_id=done.cancelled_by_id,
            cancelled_by_name=done.cancelled_by_name,
            acting_session_id=done.acting_session_id,
            reason=done.reason,
            cancelled_at=done.cancelled_at,
        )
    )
    return order_read(order, order.lines, cancellation)


def _who(principal: Principal) -> tuple[str, str, str | None]:
    """(id, name, acting session id) of whoever pressed the button: the staff member when acting."""
    if isinstance(principal, ActingSession):
        return principal.actor_id, principal.actor_name, principal.id
    return principal.id, principal.name, None


async def _ordered_from(runtime: ServiceRuntime, cart_id: str, cart_version: int) -> Order | None:
    async with runtime.reading() as session:
        return await session.scalar(
            select(Order).where(Order.cart_id == cart_id, Order.cart_version == cart_version)
        )


async def _existing(
    runtime: ServiceRuntime, org_id: str, key: str, request_hash: str
) -> OrderRead | None:
    """The order placed earlier with this key (a replay), or None; Invalid if that request's
    body differed. The one read of every order is a snapshot read (on SQLite on the bare
    driver, snapshots.SnapshotRead); the whole order is read only when there is one."""
    rows = await _BY_KEY_NOW.rows(runtime.read_engine, {"org_id": org_id, "key": key})
    return await _replayed(runtime, rows[0] if rows else None, request_hash)


async def _before_placing(
    runtime: ServiceRuntime, org_id: str, key: str, request_hash: str
) -> tuple[OrderRead | None, bool]:
    """(the order placed earlier with this key, or None; whether the organisation has any
    budget), by one snapshot read."""
    row = (await _BEFORE_PLACING.rows(runtime.read_engine, {"org_id": org_id, "key": key}))[0]
    earlier = await _replayed(runtime, row if row.id is not None else None, request_hash)
    return earlier, bool(row.has_budget)


async def _replayed(runtime: ServiceRuntime, found: Any, request_hash: str) -> OrderRead | None:
    """The order `found` (its id and request hash, or None) as a replay of this request;
    Invalid if that request's body differed."""
    if found is None:
        return None
    if found.request_hash != request_hash:
        raise Invalid("this Idempotency-Key was already used with a different request body")
    async with runtime.reading() as session:
        order = await session.get(Order, found.id)
    assert order is not None  # orders are never deleted
    return _read(order)


def _placed_read(values: dict[str, Any], lines: list[dict[str, Any]]) -> OrderRead:
    """What the client is answered about the order just inserted (from what was written)."""
    return OrderRead(
        id=values["id"],
        customer_org_id=values["customer_org_id"],
        placed_by=PartyRead(id=values["placed_by_id"], name=values["placed_by_name"]),
        acting_session_id=values["acting_session_id"],
        placed_on_behalf=values["acting_session_id"] is not None,
        items=[
            OrderLineRead(
                sku=line["sku"],
                name=line["name"],
                quantity=line["quantity"],
                unit_price=line["unit_price"],
                line_total=line["line_total"],
            )
            for line in lines
        ],
        total=values["total"],
        currency=values["currency"],
        status=values["status"],
        purchase_order_number=values["purchase_order_number"],
        created_at=values["created_at"],
        cancellation=None,
    )


async def place_order(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    bearer_token: str,
    idempotency_key: str | None,
    body: OrderCreate,
) -> tuple[OrderRead, bool]:
    """Returns the order and whether it is a replay of an earlier request with the same key."""
    org_id = org_in_view(principal)
    runtime.authorizer.authorize(principal, "place", OrderBook(org_id=org_id))
    if not idempotency_key or len(idempotency_key) > 200:
        raise Invalid("the Idempotency-Key header is required (1 to 200 characters)")
    request_hash = hashlib.sha256(
        json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()
    ).hexdigest()
    earlier, has_budget = await _before_placing(runtime, org_id, idempotency_key, request_hash)
    if earlier is not None:
        return earlier, True

    # One request: cart decides who may order its cart (policy and its own lock rule) and
    # hands over exactly what is in it, priced by catalog now.
    cart = await request_order_snapshot(runtime.nc, bearer_token=bearer_token)
    placed_by = _who(principal)
    order_id = str(uuid4())
    values: dict[str, Any] = {
        "id": order_id,
        "customer_org_id": org_id,
        "placed_by_id": placed_by[0],
        "placed_by_name": placed_by[1],
        "acting_session_id": placed_by[2],
        "status": "placed",
        "currency": cart.currency,
        "total": cart.total,
        "purchase_order_number": body.purchase_order_number,
        "cart_id": cart.cart_id,
        "cart_version": cart.version,
        "idempotency_key": idempotency_key,
        "request_hash": request_hash,
        "created_at": utcnow(),
    }
    lines = [
        {
            "order_id": order_id,
            "sku": line.sku,
            "name": line.name,
            "quantity": line.quantity,
            "unit_price": line.unit_price,
            "line_total": line.line_total,
            "position": position,
        }
        for position, line in enumerate(cart.lines)
    ]
    placed = events.OrderPlaced(
        order_id=order_id,
        cart_id=cart.cart_id,
        cart_version=cart.version,
        total=cart.total,
        currency=cart.currency,
        placed_by=events.Party(id=placed_by[0], name=placed_by[1]),
        items=[
            events.OrderedLine(sku=line.sku, quantity=line.quantity, unit_price=line.unit_price)
            for line in cart.lines
        ],
    )
    charged = budgets.NewOrder(
        id=order_id, customer_org_id=org_id, total=cart.total, currency=cart.currency
    )
    try:
        async with runtime.unit_of_work() as uow:
            # The budget decides in this transaction: placed, awaiting approval, or 409.
            values["status"] = await budgets.charge(
                uow, order=charged, principal=principal, has_budget=has_budget
            )
            written = await uow.statements()
            # With the outbox row, one statement at the commit (PostgreSQL): a duplicate
            # key is then raised there, still inside this block.
            await written.execute_at_commit(_INSERT_ORDER, values)
            if lines:
                await written.execute_at_commit(_INSERT_LINES, lines)
            uow.publish(placed, principal)
        read = _placed_read(values, lines)
    except IntegrityError:
        # The same key won a race a moment ago: answer as a replay of that order.
        earlier = await _existing(runtime, org_id, idempotency_key, request_hash)
        if earlier is not None:
            return earlier, True
        same_cart = await _ordered_from(runtime, cart.cart_id, cart.version)
        if same_cart is None:
            raise
        raise Conflict(
            f"this cart was already ordered as order {same_cart.id}; change it to order again",
            order_id=same_cart.id,
        ) from None
    # Empty the cart before answering, so the customer does not see (and re-order) it. Cart
    # takes the actor from the caller's token, which it verifies, never from what we say.
    await request_checkout(runtime.nc, order=CheckoutOrder.of(placed), bearer_token=bearer_token)
    return read, False


async def get_order(*, runtime: ServiceRuntime, principal: Principal, order_id: str) -> OrderRead:
    org_id = org_in_view(principal)
    runtime.authorizer.authorize(principal, "read", OrderBook(org_id=org_id))
    order = await history.read_one(runtime.read_engine, org_id=org_id, order_id=order_id)
    # Another organisation's order is reported as missing, not as forbidden: no probing.
    if order is None:
        raise NotFound(f"order {order_id} does not exist")
    return order


async def cancel_order(
    *, runtime: ServiceRuntime, principal: Principal, order_id: str, reason: str | None
) -> OrderRead:
    """Cancel a `placed` order (the customer's admin or a full-mode acting session), or one
    awaiting approval (they, or the buyer who placed it, withdrawing it): the policy decides
    on the status it was read in, and a conditional UPDATE refuses (409) if that changed
    meanwhile (approved, rejected, cancelled); any other status is a conflict too."""
    org_id = org_in_view(principal)
    runtime.authorizer.authorize(principal, "read", OrderBook(org_id=org_id))
    async with runtime.reading() as session:
        found = await session.get(Order, order_id)
    if found is None or found.customer_org_id != org_id:
        raise NotFound(f"order {order_id} does not exist")
    previous = found.status
    runtime.authorizer.authorize(
        principal,
        "cancel",
        PlacedOrder(
            org_id=org_id,
            id=order_id,
            placed_by_id=found.placed_by_id,
            awaiting_approval=previous == budgets.AWAITING,
        ),
    )
    by_id, by_name, session_id = _who(principal)
    async with runtime.unit_of_work() as uow:
        result = await uow.session.execute(
            update(Order)
            .where(Order.id == order_id, Order.status == previous)
            .where(Order.status.in_(CANCELLABLE))
            .values(status="cancelled")
            .execution_options(synchronize_session=False)
        )
        if cast(CursorResult[Any], result).rowcount != 1:
            status = await uow.session.scalar(select(Order.status).where(Order.id == order_id))
            raise Conflict(
                f"order {order_id} is {status}: only a placed order can be cancelled, "
                "or one still awaiting approval",
                status=status,
            )
        uow.session.add(
            OrderCancellation(
                order_id=order_id,
                cancelled_by_id=by_id,
                cancelled_by_name=by_name,
                acting_session_id=session_id,
                reason=reason,
                cancelled_at=utcnow(),
            )
        )
        await uow.session.flush()
        order = await uow.session.scalar(
            select(Order).where(Order.id == order_id).execution_options(populate_existing=True)
        )
        assert order is not None
        await budgets.give_back(uow, order=order, principal=principal)
        uow.publish(
            events.OrderCancelled(
                order_id=order.id,
                previous_status=previous,
                status=order.status,
                reason=reason,
                total=order.total,
                currency=order.currency,
                placed_by=events.Party(id=order.placed_by_id, name=order.placed_by_name),
                placed_in_acting_session=order.acting_session_id,
                cancelled_by=events.Party(id=by_id, name=by_name),
            ),
            principal,
        )
        return _read(order)
