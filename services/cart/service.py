"""Cart's business functions: the subject's active cart, changed at catalog prices."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.errors import Conflict, Invalid, NotFound
from libs.common.events import EventContext
from libs.common.principals import Principal, org_in_view
from libs.common.quotes import QuotedLine, request_quote
from libs.common.resources import Cart as CartResource
from libs.common.runtime import ServiceRuntime, UnitOfWork
from services.cart import events
from services.cart.models import Cart, CartItem
from services.cart.schemas import CartItemRead, CartRead
from services.cart.settings import CartSettings


def _read(cart: Cart | None, org_id: str) -> CartRead:
    if cart is None:
        return CartRead(id=None, org_id=org_id, items=[], version=0)
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
        version=cart.version,
    )


async def _active_cart(session: AsyncSession, org_id: str) -> Cart | None:
    return await session.scalar(select(Cart).where(Cart.active_org_id == org_id))


async def _active_cart_for_change(uow: UnitOfWork, org_id: str) -> Cart:
    cart = await _active_cart(uow.session, org_id)
    if cart is not None:
        return cart
    cart = Cart(
        id=str(uuid4()), org_id=org_id, active_org_id=org_id, status="active", version=0, items=[]
    )
    uow.session.add(cart)
    await uow.session.flush()
    return cart


async def _quote_one(runtime: ServiceRuntime, org_id: str, sku: str) -> QuotedLine:
    quote = await request_quote(runtime.nc, org_id=org_id, skus=[sku])
    line = quote.lines.get(sku)
    if line is None:
        raise Invalid(f"unknown SKU {sku}: no such product in this customer's catalog")
    return line


def _line_data(cart: Cart, item: CartItem) -> dict[str, Any]:
    return {
        "cart_id": cart.id,
        "cart_version": cart.version,
        "sku": item.sku,
        "quantity": item.quantity,
        "unit_price": str(item.unit_price),
        "currency": item.currency,
    }


async def get_cart(*, runtime: ServiceRuntime, principal: Principal) -> CartRead:
    org_id = org_in_view(principal)
    runtime.authorizer.authorize(principal, "read", CartResource(org_id=org_id))
    async with runtime.reading() as session:
        return _read(await _active_cart(session, org_id), org_id)


def _check_quantity(settings: CartSettings, quantity: int) -> None:
    if quantity > settings.max_quantity:
        raise Invalid(f"quantity {quantity} is above the maximum of {settings.max_quantity}")


async def add_item(
    *,
    runtime: ServiceRuntime,
    settings: CartSettings,
    principal: Principal,
    sku: str,
    quantity: int,
) -> CartRead:
    org_id = org_in_view(principal)
    runtime.authorizer.authorize(principal, "change", CartResource(org_id=org_id))
    _check_quantity(settings, quantity)
    line = await _quote_one(runtime, org_id, sku)
    try:
        async with runtime.unit_of_work() as uow:
            cart = await _active_cart_for_change(uow, org_id)
            item = next((i for i in cart.items if i.sku == sku), None)
            if item is None:
                item = CartItem(
                    sku=sku,
                    name=line.name,
                    quantity=quantity,
                    unit_price=line.unit_price,
                    currency=line.currency,
                    position=len(cart.items),
                )
                cart.items.append(item)
            else:
                _check_quantity(settings, item.quantity + quantity)
                item.quantity += quantity
                item.unit_price = line.unit_price
            cart.version += 1
            await uow.session.flush()
            uow.publish(events.ITEM_ADDED, {**_line_data(cart, item), "added": quantity}, principal)
            read = _read(cart, org_id)
    except IntegrityError as exc:
        # Two first items at once both tried to open the cart: the loser may simply retry.
        raise Conflict("the cart changed at the same moment; try again") from exc
    return read


async def change_item(
    *,
    runtime: ServiceRuntime,
    settings: CartSettings,
    principal: Principal,
    sku: str,
    quantity: int,
) -> CartRead:
    org_id = org_in_view(principal)
    runtime.authorizer.authorize(principal, "change", CartResource(org_id=org_id))
    _check_quantity(settings, quantity)
    line = await _quote_one(runtime, org_id, sku)
    async with runtime.unit_of_work() as uow:
        cart = await _active_cart(uow.session, org_id)
        item = next((i for i in cart.items if i.sku == sku), None) if cart else None
        if cart is None or item is None:
            raise NotFound(f"SKU {sku} is not in the cart")
        item.quantity = quantity
        item.unit_price = line.unit_price
        cart.version += 1
        await uow.session.flush()
        uow.publish(events.ITEM_CHANGED, _line_data(cart, item), principal)
        return _read(cart, org_id)


async def remove_item(*, runtime: ServiceRuntime, principal: Principal, sku: str) -> CartRead:
    org_id = org_in_view(principal)
    runtime.authorizer.authorize(principal, "change", CartResource(org_id=org_id))
    async with runtime.unit_of_work() as uow:
        cart = await _active_cart(uow.session, org_id)
        item = next((i for i in cart.items if i.sku == sku), None) if cart else None
        if cart is None or item is None:
            raise NotFound(f"SKU {sku} is not in the cart")
        cart.items.remove(item)
        cart.version += 1
        await uow.session.flush()
        uow.publish(
            events.ITEM_REMOVED,
            {"cart_id": cart.id, "cart_version": cart.version, "sku": sku},
            principal,
        )
        return _read(cart, org_id)


async def check_out(*, uow: UnitOfWork, context: EventContext, order: dict[str, Any]) -> None:
    """An order was placed from a cart: empty it of what was ordered.

    If nobody changed the cart since the order read it, the whole cart is closed (the
    next change opens a new one); otherwise only the ordered quantities leave it.
    """
    cart = await uow.session.get(Cart, order.get("cart_id"))
    if cart is None or cart.status != "active":
        return
    if cart.version == order.get("cart_version"):
        cart.status = "checked_out"
        cart.active_org_id = None
    else:
        ordered = {line["sku"]: int(line["quantity"]) for line in order.get("items", [])}
        for item in list(cart.items):
            left = item.quantity - ordered.get(item.sku, 0)
            if left <= 0:
                cart.items.remove(item)
            else:
                item.quantity = left
        cart.version += 1
    uow.publish(
        events.CHECKED_OUT,
        {"cart_id": cart.id, "order_id": order.get("order_id"), "status": cart.status},
        context,
    )
