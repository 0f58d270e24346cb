"""Cart's business functions: the active cart, changed at catalog prices, lock and version checked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from uuid import uuid4

from sqlalchemy.exc import IntegrityError

from libs.common.clock import utcnow
from libs.common.errors import Conflict, Invalid, NotFound, PreconditionFailed
from libs.common.events import EventContext
from libs.common.principals import Principal, org_in_view
from libs.common.quotes import request_quote
from libs.common.resources import Cart as CartResource
from libs.common.runtime import ServiceRuntime, UnitOfWork
from libs.common.statements import Statements
from libs.contracts.base import Event
from libs.contracts.cart import CheckoutOrder
from libs.contracts.catalog import PriceQuote, QuotedLine
from services.cart import events, locking, queries
from services.cart.queries import CartState, Line
from services.cart.schemas import CartItemRead, CartLockRead, CartRead
from services.cart.settings import CartSettings, cart_settings


def etag(version: int) -> str:
    return f'"{version}"'


def _read(cart: CartState, lock: CartLockRead | None) -> CartRead:
    return CartRead(
        id=cart.id,
        org_id=cart.org_id,
        items=[
            CartItemRead(
                sku=i.sku,
                name=i.name,
                quantity=i.quantity,
                unit_price=i.unit_price,
                currency=i.currency,
            )
            for i in cart.items
        ],
        lock=lock,
        version=cart.version,
    )


def row_locks(runtime: ServiceRuntime) -> bool:
    """Whether rows are locked (PostgreSQL): on SQLite BEGIN IMMEDIATE already makes every
    writer queue behind the one before it, and a re-read after queueing finds nothing new."""
    return runtime.row_locks


def check_if_match(if_match: str | None, version: int) -> None:
    """Optimistic concurrency: a change that names a version the cart has left gets 412.

    `"5"`, `W/"5"` and a bare `5` all name version 5; `*` and no header match any version."""
    if if_match is None:
        return
    tags = [tag.strip() for tag in if_match.split(",") if tag.strip()]
    if "*" in tags:
        return
    named = {tag.removeprefix("W/").strip('"') for tag in tags}
    if str(version) not in named:
        raise PreconditionFailed(
            f"the cart changed since you read it: If-Match names {if_match} but the cart is at "
            f"version {version}; read it again (GET /v1/cart) and retry",
            current_version=version,
        )


async def _begin_change(
    uow: UnitOfWork,
    connection: Statements,
    *,
    settings: CartSettings,
    principal: Principal,
    org_id: str,
    if_match: str | None,
) -> CartState:
    """Lock first (409 for anyone but the holder), then the version (412), then the cart:
    the cart, its lines and its lock come from one statement once the change has queued."""
    if row_locks(uow.runtime):
        await locking.queue_behind_changes(uow, connection, org_id)
    cart = await queries.cart_in_view(connection, org_id)
    cart.lock = await locking.guard_change(
        uow, connection, settings=settings, principal=principal, org_id=org_id, row=cart.lock
    )
    check_if_match(if_match, cart.version)
    if cart.id is None:
        # The first change opens the cart, at the version the organisation's carts reached.
        cart.id = str(uuid4())
    return cart


@dataclass
class CartChange:
    """The cart being changed inside `changing_cart`'s transaction."""

    uow: UnitOfWork
    connection: Statements
    cart: CartState
    org_id: str
    principal: Principal

    async def advance(self) -> CartState:
        """The change is made: the cart's version moves on (every ETag read before it is
        stale now) and the rows are written, so the event can name the new version."""
        self.cart.version += 1
        await queries.write(self.connection, self.cart, now=utcnow())
        return self.cart

    async def publish(self, event: Event) -> CartRead:
        """Stage the change's event (the caller is its actor) and answer the cart as left
        (the lock as this transaction left it: nothing else can have changed it since)."""
        self.uow.publish(event, self.principal)
        lock = locking.live_lock(self.cart.lock, revoked=self.uow.runtime.revoked, now=utcnow())
        return _read(self.cart, lock)


@asynccontextmanager
async def changing_cart(
    runtime: ServiceRuntime,
    *,
    settings: CartSettings,
    principal: Principal,
    org_id: str,
    if_match: str | None,
) -> AsyncIterator[CartChange]:
    """One change of the organisation's active cart, in one transaction: lock (409) and
    version (412) checked first; the caller mutates `change.cart`, then `advance()`s it and
    `publish()`es its event; the change and the event commit together or not at all."""
    async with runtime.unit_of_work() as uow:
        connection = await uow.statements()
        cart = await _begin_change(
            uow,
            connection,
            settings=settings,
            principal=principal,
            org_id=org_id,
            if_match=if_match,
        )
        yield CartChange(
            uow=uow, connection=connection, cart=cart, org_id=org_id, principal=principal
        )


async def quote(runtime: ServiceRuntime, org_id: str, skus: list[str]) -> PriceQuote:
    """Catalog's prices for the organisation; 422 names every SKU it does not sell to it."""
    found = await request_quote(runtime.nc, org_id=org_id, skus=skus)
    missing = sorted(set(found.unavailable) | {s for s in skus if s not in found.lines})
    if missing:
        raise Invalid(
            f"unknown SKU {', '.join(missing)}: no such product in this customer's catalog"
        )
    return found


async def quote_for_order(runtime: ServiceRuntime, org_id: str, skus: list[str]) -> PriceQuote:
    """Catalog's prices for an order of these SKUs: all still sold to the customer, in one
    currency (422 otherwise)."""
    found = await request_quote(runtime.nc, org_id=org_id, skus=skus)
    missing = sorted(set(found.unavailable) | {s for s in skus if s not in found.lines})
    if missing:
        raise Invalid("no longer available to this customer: " + ", ".join(missing))
    currencies = {line.currency for line in found.lines.values()}
    if len(currencies) != 1:
        raise Invalid(f"the cart mixes currencies ({', '.join(sorted(currencies))})")
    return found


async def _quote_one(runtime: ServiceRuntime, org_id: str, sku: str) -> QuotedLine:
    return (await quote(runtime, org_id, [sku])).lines[sku]


async def get_cart(*, runtime: ServiceRuntime, principal: Principal) -> CartRead:
    org_id = org_in_view(principal)
    runtime.authorizer.authorize(principal, "read", CartResource(org_id=org_id))
    cart = await queries.cart_in_view_now(runtime, org_id)
    return _read(cart, locking.live_lock(cart.lock, revoked=runtime.revoked, now=utcnow()))


def check_quantity(settings: CartSettings, quantity: int, *, sku: str | None = None) -> None:
    if quantity > settings.max_quantity:
        of = f" of {sku}" if sku else ""
        raise Invalid(f"quantity {quantity}{of} is above the maximum of {settings.max_quantity}")


def add_line(cart: CartState, line: QuotedLine, quantity: int, settings: CartSettings) -> Line:
    """Add `quantity` of a quoted product to the cart at the catalog's current price."""
    item = next((i for i in cart.items if i.sku == line.sku), None)
    if item is None:
        item = Line(
            sku=line.sku,
            name=line.name,
            quantity=quantity,
            unit_price=line.unit_price,
            currency=line.currency,
            position=max((i.position for i in cart.items), default=-1) + 1,
        )
        cart.items.append(item)
    else:
        check_quantity(settings, item.quantity + quantity, sku=line.sku)
        item.quantity += quantity
        item.name = line.name
        item.unit_price = line.unit_price
    return item


def _may_change(runtime: ServiceRuntime, principal: Principal) -> tuple[CartSettings, str]:
    """The policy's word on changing the cart in view (403 with its reason), before anything."""
    org_id = org_in_view(principal)
    runtime.authorizer.authorize(principal, "change", CartResource(org_id=org_id))
    return cart_settings(runtime), org_id


async def _priced_change(
    runtime: ServiceRuntime, principal: Principal, *, sku: str, quantity: int
) -> tuple[CartSettings, str, QuotedLine]:
    """What setting a product's quantity starts with, outside the transaction: the policy,
    the quantity's maximum (422), catalog's price for the customer now (422 for an SKU it
    is not sold)."""
    settings, org_id = _may_change(runtime, principal)
    check_quantity(settings, quantity)
    return settings, org_id, await _quote_one(runtime, org_id, sku)


def _line_of(cart: CartState, sku: str) -> Line:
    item = next((i for i in cart.items if i.sku == sku), None)
    if item is None:
        raise NotFound(f"SKU {sku} is not in the cart")
    return item


async def add_item(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    sku: str,
    quantity: int,
    if_match: str | None = None,
) -> CartRead:
    settings, org_id, line = await _priced_change(runtime, principal, sku=sku, quantity=quantity)
    try:
        async with changing_cart(
            runtime, settings=settings, principal=principal, org_id=org_id, if_match=if_match
        ) as change:
            item = add_line(change.cart, line, quantity, settings)
            cart = await change.advance()
            return await change.publish(
                events.CartItemAdded(
                    cart_id=cart.id,
                    cart_version=cart.version,
                    sku=item.sku,
                    quantity=item.quantity,
                    unit_price=item.unit_price,
                    currency=item.currency,
                    added=quantity,
                )
            )
    except IntegrityError as exc:
        # Two first items at once both tried to open the cart: the loser may simply retry.
        raise Conflict("the cart changed at the same moment; try again") from exc


async def change_item(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    sku: str,
    quantity: int,
    if_match: str | None = None,
) -> CartRead:
    settings, org_id, line = await _priced_change(runtime, principal, sku=sku, quantity=quantity)
    async with changing_cart(
        runtime, settings=settings, principal=principal, org_id=org_id, if_match=if_match
    ) as change:
        item = _line_of(change.cart, sku)
        item.quantity = quantity
        item.unit_price = line.unit_price
        cart = await change.advance()
        return await change.publish(
            events.CartItemChanged(
                cart_id=cart.id,
                cart_version=cart.version,
                sku=item.sku,
                quantity=item.quantity,
                unit_price=item.unit_price,
                currency=item.currency,
            )
        )


async def remove_item(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    sku: str,
    if_match: str | None = None,
) -> CartRead:
    settings, org_id = _may_change(runtime, principal)
    async with changing_cart(
        runtime, settings=settings, principal=principal, org_id=org_id, if_match=if_match
    ) as change:
        change.cart.items.remove(_line_of(change.cart, sku))
        cart = await change.advance()
        return await change.publish(
            events.CartItemRemoved(cart_id=cart.id, cart_version=cart.version, sku=sku)
        )


async def cart_for_checkout(
    uow: UnitOfWork, cart_id: str, *, queue_behind: str | None = None
) -> CartState | None:
    """The cart an order names, with its lines (None if there is no such cart).

    `queue_behind`: on PostgreSQL, the organisation whose cart changes to wait for first
    (the order's, named by its token); the cart is then read once, after the wait, as the
    last change left it, and `check_out` is told so (`queued_behind`)."""
    connection = await uow.statements()
    if queue_behind is not None and row_locks(uow.runtime):
        await locking.queue_behind_changes(uow, connection, queue_behind)
    return await queries.cart_by_id(connection, cart_id)


async def check_out(
    *,
    uow: UnitOfWork,
    context: EventContext,
    order: CheckoutOrder,
    cart: CartState | None = None,
    queued_behind: str | None = None,
) -> None:
    """An order was placed from a cart: empty it of what was ordered.

    If nobody changed the cart since the order read it, the whole cart is closed (the
    next change opens a new one); otherwise only the ordered quantities leave it. Either
    way its version moves on, so no ETag read before the order matches afterwards.
    `cart` is the cart as this transaction already read it, if it did; `queued_behind` the
    organisation whose lock row it took before that read (`cart_for_checkout`).
    """
    connection = await uow.statements()
    if cart is None:
        cart = await queries.cart_by_id(connection, order.cart_id)
    if cart is None:
        return
    if row_locks(uow.runtime) and cart.org_id != queued_behind:
        # Queue behind the organisation's cart changes, like they queue behind each other,
        # then read the cart as the last of them left it (unless it was read after the wait).
        await locking.queue_behind_changes(uow, connection, cart.org_id)
        cart = await queries.cart_by_id(connection, order.cart_id)
        if cart is None:
            return
    if cart.status != "active":
        return
    if cart.version == order.cart_version:
        cart.status = "checked_out"
    else:
        ordered = {line.sku: line.quantity for line in order.items}
        for item in list(cart.items):
            left = item.quantity - ordered.get(item.sku, 0)
            if left <= 0:
                cart.items.remove(item)
            else:
                item.quantity = left
    cart.version += 1
    await queries.write(connection, cart, now=utcnow())
    uow.publish(
        events.CartCheckedOut(cart_id=order.cart_id, order_id=order.order_id, status=cart.status),
        context,
    )
