"""The checkout request over NATS (contract: libs.contracts.cart.CartCheckout): orders tells
cart an order was placed from it, on the authority of the caller's bearer token."""

from __future__ import annotations

from dataclasses import dataclass

from nats.aio.client import Client as NATS

from libs.contracts.base import BadMessage
from libs.contracts.cart import (
    AUTHORIZATION_HEADER,
    CartCheckout,
    CheckoutOrder,
    CheckoutReply,
)

CHECKOUT_SUBJECT = CartCheckout.subject
BadCheckout = BadMessage


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    """What cart gets: the order, and the bearer token the order was placed with. The body
    names no actor: cart takes actor and subject from the token it verifies itself, so a
    process that can publish on the subject cannot speak for anyone."""

    order: CheckoutOrder
    bearer_token: str | None


def bearer_of(headers: dict[str, str] | None) -> str | None:
    """The bearer token of a request's `Authorization` header, if it carries one."""
    scheme, _, token = (headers or {}).get(AUTHORIZATION_HEADER, "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def bearer_header(token: str) -> dict[str, str]:
    return {AUTHORIZATION_HEADER: f"Bearer {token}"}


async def request_checkout(
    nc: NATS, *, order: CheckoutOrder, bearer_token: str, timeout: float = 2.0
) -> bool:
    """Ask cart to check out the cart `order` came from, now, on the authority of the caller's
    token. False if cart did not confirm: the `orders.order.placed` event does the same job
    a little later (cart handles each order once)."""
    payload = CartCheckout(order=order).encode()
    try:
        reply = await nc.request(
            CHECKOUT_SUBJECT, payload, timeout=timeout, headers=bearer_header(bearer_token)
        )
        return CheckoutReply.decode(reply.data).ok
    except Exception:
        return False


def parse_checkout(payload: bytes, headers: dict[str, str] | None) -> CheckoutRequest:
    """The order and the caller's token; BadCheckout if the body is not a checkout."""
    return CheckoutRequest(
        order=CartCheckout.decode(payload).order, bearer_token=bearer_of(headers)
    )
