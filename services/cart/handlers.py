"""What cart consumes: placed orders (empty their cart) and ended acting sessions (end their locks)."""

from __future__ import annotations

import json

import structlog
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import BaseModel, Field
from sqlalchemy import select

from libs.common.checkout import CHECKOUT_SUBJECT, BadCheckout, parse_checkout
from libs.common.consumer import (
    UUID_PATTERN,
    Delivery,
    PoisonMessage,
    checked_context,
    consume,
    event_data,
)
from libs.common.errors import DomainError, NotFound, Unauthenticated
from libs.common.events import EventContext
from libs.common.inbox import first_delivery
from libs.common.resources import OrderBook
from libs.common.runtime import ServiceRuntime
from services.cart import locking, service
from services.cart.models import Cart, InboxEntry

ORDER_PLACED_SUBJECT = "events.orders.order.placed"
SESSION_ENDED_SUBJECT = "events.identity.acting_session.ended"

log = structlog.get_logger("cart.handlers")


class OrderedLine(BaseModel):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=1)


class PlacedOrder(BaseModel):
    """What the checkout safety net reads of `orders.order.placed`."""

    order_id: str = Field(min_length=1, max_length=36)
    cart_id: str = Field(min_length=1, max_length=36)
    cart_version: int
    items: list[OrderedLine] = Field(default_factory=list)


class EndedSession(BaseModel):
    """What lock release reads of `identity.acting_session.ended`."""

    session_id: str = Field(pattern=UUID_PATTERN)
    reason: str | None = Field(default=None, max_length=200)


def _inbox_key(event_id: str) -> str:
    """An event id as the inbox stores it; one too long for the column would fail every time."""
    if not 0 < len(event_id) <= 36:
        raise PoisonMessage("the event id is longer than 36 characters")
    return event_id


async def serve_checkouts(runtime: ServiceRuntime) -> Subscription:
    """Orders asks right after placing, so the cart is empty when the customer looks again.
    The request carries the token the order was placed with: cart verifies it as it would an
    HTTP request and asks the policy whether its holder may order from that cart, so whoever
    can publish on the subject cannot empty another customer's cart or speak for anyone."""

    async def on_request(message: Msg) -> None:
        reply: dict[str, object]
        try:
            request = parse_checkout(message.data, message.headers)
            if request.bearer_token is None:
                raise Unauthenticated("the checkout request carries no bearer token")
            principal = runtime.verifier.verify(request.bearer_token)
            order = request.order
            async with runtime.unit_of_work() as uow:
                org_id = await uow.session.scalar(
                    select(Cart.org_id).where(Cart.id == order["cart_id"])
                )
                if org_id is None:
                    raise NotFound(f"cart {order['cart_id']} does not exist")
                # Checking out is the cart half of placing the order: the same decision.
                runtime.authorizer.authorize(principal, "place", OrderBook(org_id=org_id))
                context = EventContext.of(principal, policy_revision=runtime.authorizer.revision)
                # Keyed by order id: this request and the event below empty a cart once.
                if await first_delivery(uow.session, InboxEntry, str(order["order_id"])):
                    await service.check_out(uow=uow, context=context, order=order)
            reply = {"ok": True}
        except (BadCheckout, DomainError) as exc:
            refusal = exc.detail if isinstance(exc, DomainError) else str(exc)
            reason = exc.reason if isinstance(exc, DomainError) else None
            log.warning("checkout_refused", error=refusal, reason=reason)
            reply = {"ok": False, "error": refusal, "reason": reason}
        except Exception as exc:
            log.warning("checkout_failed", error=repr(exc))
            reply = {"ok": False, "error": "checkout failed; the order event will retry it"}
        await message.respond(json.dumps(reply).encode())

    return await runtime.nc.subscribe(CHECKOUT_SUBJECT, queue="cart", cb=on_request)


async def check_out_ordered_carts(runtime: ServiceRuntime) -> None:
    """The safety net: every placed order empties its cart even if the request above failed."""

    async def handle(batch: list[Delivery]) -> None:
        async with runtime.unit_of_work() as uow:
            for delivery in batch:
                event = delivery.event
                order = event_data(event, PlacedOrder)
                context = checked_context(event, policy_revision=runtime.authorizer.revision)
                if not await first_delivery(uow.session, InboxEntry, order.order_id):
                    continue
                await service.check_out(uow=uow, context=context, order=order.model_dump())

    await consume(
        runtime.js,
        service="cart",
        durable="cart-checkout",
        subject=ORDER_PLACED_SUBJECT,
        handle=handle,
        max_deliveries=runtime.settings.consumer_max_deliveries,
    )


async def release_locks_of_ended_sessions(runtime: ServiceRuntime) -> None:
    """The revocation set already stops an ended session's lock from blocking anyone; this
    clears the row and records the release (`cart.lock.released`, reason session_ended)."""

    async def handle(batch: list[Delivery]) -> None:
        async with runtime.unit_of_work() as uow:
            for delivery in batch:
                event = delivery.event
                ended = event_data(event, EndedSession)
                context = checked_context(event, policy_revision=runtime.authorizer.revision)
                if not await first_delivery(uow.session, InboxEntry, _inbox_key(event.get_id())):
                    continue
                await locking.release_locks_of_ended_session(
                    uow=uow,
                    context=context,
                    session_id=ended.session_id,
                    end_reason=ended.reason,
                )

    await consume(
        runtime.js,
        service="cart",
        durable="cart-lock-release",
        subject=SESSION_ENDED_SUBJECT,
        handle=handle,
        max_deliveries=runtime.settings.consumer_max_deliveries,
    )
