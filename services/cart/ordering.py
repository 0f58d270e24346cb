"""What an order may take from the cart: cart answers orders' snapshot request with the cart in
view, priced by catalog now, after its own lock rule and the policy's `place` decision."""

from __future__ import annotations

from decimal import Decimal

from libs.common.clock import utcnow
from libs.common.errors import Invalid
from libs.common.principals import Principal, org_in_view
from libs.common.resources import OrderBook
from libs.common.runtime import ServiceRuntime
from libs.contracts.cart import CartSnapshot, SnapshotLine
from services.cart import locking, queries
from services.cart.service import quote_for_order


async def order_snapshot(*, runtime: ServiceRuntime, principal: Principal) -> CartSnapshot:
    """The cart `principal` may order, exactly as it is now: 403 if the policy refuses them
    `place`, 409 naming the holder while someone else holds the lock, 422 if it is empty,
    mixes currencies or holds products no longer sold to the customer."""
    org_id = org_in_view(principal)
    # Ordering from the cart is placing an order: the same decision orders asks.
    runtime.authorizer.authorize(principal, "place", OrderBook(org_id=org_id))
    cart = await queries.cart_in_view_now(runtime, org_id)
    # Placing the order empties the cart: while a staff member holds its lock, only they may.
    locking.guard_order(principal, cart.lock, revoked=runtime.revoked, now=utcnow())
    items = [(i.sku, i.quantity) for i in cart.items]
    if cart.id is None or not items:
        raise Invalid("the cart is empty")
    quote = await quote_for_order(runtime, org_id, [sku for sku, _ in items])
    lines = [
        SnapshotLine(
            sku=sku,
            name=quote.lines[sku].name,
            quantity=quantity,
            unit_price=quote.lines[sku].unit_price,
            line_total=quote.lines[sku].unit_price * quantity,
        )
        for sku, quantity in items
    ]
    currencies = {line.currency for line in quote.lines.values()}
    return CartSnapshot(
        cart_id=cart.id,
        org_id=org_id,
        version=cart.version,
        currency=currencies.pop(),
        total=sum((line.line_total for line in lines), start=Decimal(0)),
        lines=lines,
    )
