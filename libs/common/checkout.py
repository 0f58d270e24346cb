"""The checkout contract over NATS request-reply: orders tells cart an order was placed from it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client as NATS

CHECKOUT_SUBJECT = "cart.checkout"
AUTHORIZATION_HEADER = "Authorization"


class BadCheckout(ValueError):
    """A checkout request cart cannot act on; its message says why (sent back to the caller)."""


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    """What cart gets: the order, and the bearer token the order was placed with. The body
    names no actor: cart takes actor and subject from the token it verifies itself, so a
    process that can publish on the subject cannot speak for anyone."""

    order: dict[str, Any]
    bearer_token: str | None


async def request_checkout(
    nc: NATS, *, order: dict[str, Any], bearer_token: str, timeout: float = 2.0
) -> bool:
    """Ask cart to empty the cart `order` came from, now, on the authority of the caller's
    token. False if cart did not confirm: the `orders.order.placed` event does the same job
    a little later (cart handles each order once)."""
    payload = json.dumps({"order": order}).encode()
    headers = {AUTHORIZATION_HEADER: f"Bearer {bearer_token}"}
    try:
        reply = await nc.request(CHECKOUT_SUBJECT, payload, timeout=timeout, headers=headers)
    except Exception:
        return False
    try:
        return bool(json.loads(reply.data).get("ok"))
    except ValueError:
        return False


def parse_checkout(payload: bytes, headers: dict[str, str] | None) -> CheckoutRequest:
    """The order and the caller's token; BadCheckout if the body is not a checkout."""
    try:
        body = json.loads(payload)
    except ValueError as exc:
        raise BadCheckout("the checkout body is not JSON") from exc
    order = body.get("order") if isinstance(body, dict) else None
    if not isinstance(order, dict) or not isinstance(order.get("order_id"), str):
        raise BadCheckout("the checkout body carries no order")
    if not isinstance(order.get("cart_id"), str):
        raise BadCheckout("the order names no cart")
    scheme, _, token = (headers or {}).get(AUTHORIZATION_HEADER, "").partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return CheckoutRequest(order=dict(order), bearer_token=bearer)
