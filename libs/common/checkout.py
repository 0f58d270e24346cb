"""The checkout contract over NATS request-reply: orders tells cart an order was placed from it."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from nats.aio.client import Client as NATS

from libs.common.events import EventContext

CHECKOUT_SUBJECT = "cart.checkout"


async def request_checkout(
    nc: NATS, *, order: dict[str, Any], context: EventContext, timeout: float = 2.0
) -> bool:
    """Ask cart to empty the cart `order` came from, now. False if cart did not confirm: the
    `orders.order.placed` event does the same job a little later (cart handles each order once)."""
    payload = json.dumps({"order": order, "context": asdict(context)}).encode()
    try:
        reply = await nc.request(CHECKOUT_SUBJECT, payload, timeout=timeout)
    except Exception:
        return False
    try:
        return bool(json.loads(reply.data).get("ok"))
    except ValueError:
        return False


def parse_checkout(payload: bytes) -> tuple[dict[str, Any], EventContext]:
    body = json.loads(payload)
    return dict(body["order"]), EventContext(**body["context"])
