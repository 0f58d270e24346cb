"""What cart consumes: placed orders (empty their cart) and ended acting sessions (end their locks)."""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from libs.common.checkout import CHECKOUT_SUBJECT, BadCheckout, bearer_of, parse_checkout
from libs.common.consumer import (
    Delivery,
    PoisonMessage,
    checked_context,
    consume,
    event_data,
)
from libs.common.errors import DomainError, NotFound, Unauthenticated
from libs.common.events import EventContext
from libs.common.inbox import first_delivery
from libs.common.local_requests import Answering, answer_requests
from libs.common.principals import org_in_view
from libs.common.resources import OrderBook
from libs.common.runtime import ServiceRuntime
from libs.contracts.base import BadMessage, Refusal
from libs.contracts.cart import (
    CartSnapshotReply,
    CartSnapshotRequest,
    CheckoutOrder,
    CheckoutReply,
)
from libs.contracts.identity import ActingSessionEnded
from libs.contracts.orders import OrderPlaced
from services.cart import locking, ordering, queries, service
from services.cart.models import InboxEntry
from services.cart.settings import cart_settings

log = structlog.get_logger("cart.handlers")


def _inbox_key(event_id: str) -> str:
    """An event id as the inbox stores it; one too long for the column would fail every time."""
    if not 0 < len(event_id) <= 36:
        raise PoisonMessage("the event id is longer than 36 characters")
    return event_id


async def serve_checkouts(runtime: ServiceRuntime) -> Answering:
    """Orders asks right after placing, so the cart is empty when the customer looks again.
    The request carries the token the order was placed with: cart verifies it as it would an
    HTTP request and asks the policy whether its holder may order from that cart, so whoever
    can publish on the subject cannot empty another customer's cart or speak for anyone."""

    async def answer(data: bytes, headers: Mapping[str, str] | None) -> bytes:
        reply: CheckoutReply
        try:
            request = parse_checkout(data, headers)
            if request.bearer_token is None:
                raise Unauthenticated("the checkout request carries no bearer token")
            principal = runtime.verifier.verify(request.bearer_token)
            order = request.order
            async with runtime.unit_of_work() as uow:
                # Keyed by order id: this request and the event below empty a cart once.
                # Recorded before the cart's lock row is taken, in the order the event's
                # handler takes them (the other way round they could deadlock); a refusal
                # below rolls it back.
                first = await first_delivery(await uow.statements(), InboxEntry, order.order_id)
                # The token names the organisation: its cart changes are waited for before
                # the one read of the cart (PostgreSQL), not after a read made in vain.
                org_id = org_in_view(principal) if first else None
                cart = await service.cart_for_checkout(uow, order.cart_id, queue_behind=org_id)
                if cart is None:
                    raise NotFound(f"cart {order.cart_id} does not exist")
                # Checking out is the cart half of placing the order: the same decision.
                runtime.authorizer.authorize(principal, "place", OrderBook(org_id=cart.org_id))
                context = EventContext.of(principal, policy_revision=runtime.authorizer.revision)
                if first:
                    await service.check_out(
                        uow=uow, context=context, order=order, cart=cart, queued_behind=org_id
                    )
            reply = CheckoutReply(ok=True)
        except (BadCheckout, DomainError) as exc:
            refusal = exc.detail if isinstance(exc, DomainError) else str(exc)
            reason = exc.reason if isinstance(exc, DomainError) else None
            log.warning("checkout_refused", error=refusal, reason=reason)
            reply = CheckoutReply(ok=False, error=refusal, reason=reason)
        except Exception as exc:
            log.warning("checkout_failed", error=repr(exc))
            reply = CheckoutReply(ok=False, error="checkout failed; the order event will retry it")
        return reply.encode()

    return await answer_requests(runtime.nc, CHECKOUT_SUBJECT, queue="cart", responder=answer)


async def serve_order_snapshots(runtime: ServiceRuntime) -> Answering:
    """Orders asks before placing: may the token's holder order the cart in view, and what
    exactly is in it, priced now? Authorised by the bearer token like a checkout; a refusal
    comes back as the HTTP error orders answers with."""

    async def answer(data: bytes, headers: Mapping[str, str] | None) -> bytes:
        reply: CartSnapshotReply
        try:
            CartSnapshotRequest.decode(data or b"{}")
            token = bearer_of(headers)
            if token is None:
                raise Unauthenticated("the order snapshot request carries no bearer token")
            principal = runtime.verifier.verify(token)
            snapshot = await ordering.order_snapshot(runtime=runtime, principal=principal)
            reply = CartSnapshotReply(snapshot=snapshot)
        except DomainError as exc:
            reply = CartSnapshotReply(
                refusal=Refusal(
                    status=exc.status, detail=exc.detail, reason=exc.reason, extra=exc.extra
                )
            )
        except BadMessage as exc:
            reply = CartSnapshotReply(refusal=Refusal(status=400, detail=str(exc)))
        except Exception as exc:
            log.warning("order_snapshot_failed", error=repr(exc))
            reply = CartSnapshotReply(
                refusal=Refusal(status=503, detail="the cart could not be read for the order")
            )
        return reply.encode()

    return await answer_requests(
        runtime.nc, CartSnapshotRequest.subject, queue="cart", responder=answer
    )


async def check_out_ordered_carts(runtime: ServiceRuntime) -> None:
    """The safety net: every placed order empties its cart even if the request above failed."""

    async def handle(batch: list[Delivery]) -> None:
        orders = []
        for delivery in batch:
            event = delivery.event
            placed = event_data(event, OrderPlaced)
            context = checked_context(event, policy_revision=runtime.authorizer.revision)
            orders.append((placed, context))
        # The checkout request has almost always emptied the cart already: a read (no write
        # transaction, no queueing behind the writers) tells which orders are done.
        done = await queries.handled_now(
            runtime.read_engine, [placed.order_id for placed, _ in orders]
        )
        left = [(placed, context) for placed, context in orders if placed.order_id not in done]
        if not left:
            return
        async with runtime.unit_of_work() as uow:
            for placed, context in left:
                if not await first_delivery(await uow.statements(), InboxEntry, placed.order_id):
                    continue
                await service.check_out(uow=uow, context=context, order=CheckoutOrder.of(placed))

    await consume(
        runtime.js,
        service="cart",
        durable="cart-checkout",
        subject=OrderPlaced.subject(),
        handle=handle,
        max_deliveries=runtime.settings.consumer_max_deliveries,
        linger_seconds=cart_settings(runtime).checkout_net_linger_seconds,
    )


async def release_locks_of_ended_sessions(runtime: ServiceRuntime) -> None:
    """The revocation set already stops an ended session's lock from blocking anyone; this
    clears the row and records the release (`cart.lock.released`, reason session_ended)."""

    async def handle(batch: list[Delivery]) -> None:
        async with runtime.unit_of_work() as uow:
            for delivery in batch:
                event = delivery.event
                ended = event_data(event, ActingSessionEnded)
                context = checked_context(event, policy_revision=runtime.authorizer.revision)
                if not await first_delivery(
                    await uow.statements(), InboxEntry, _inbox_key(event.get_id())
                ):
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
        subject=ActingSessionEnded.subject(),
        handle=handle,
        max_deliveries=runtime.settings.consumer_max_deliveries,
    )
