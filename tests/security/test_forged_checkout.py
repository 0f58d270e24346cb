"""A checkout request on the bus empties a cart only on the authority of a verified token."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from libs.common.checkout import CHECKOUT_SUBJECT
from tests.cart.people import reviewer
from tests.security.bus import bus_client
from tests.security.forgery import signed_by_another_key
from tests.support import Api, World, audit_events, ok, wait_until


@dataclass
class Shop:
    """Org A and org B each with one item in the cart; A's buyer, B's buyer, A's viewer."""

    world: World
    buyer_a: Api
    buyer_b: Api
    cart_a: dict[str, Any]
    cart_b: dict[str, Any]


@pytest.fixture
def shop(world: World) -> Shop:
    buyer_a, buyer_b = world.login(world.buyer_a), world.login(world.buyer_b)
    ok(buyer_a.post("cart", "/v1/cart/items", json={"sku": world.skus[0], "quantity": 2}))
    ok(buyer_b.post("cart", "/v1/cart/items", json={"sku": world.skus[2], "quantity": 1}))
    return Shop(
        world=world,
        buyer_a=buyer_a,
        buyer_b=buyer_b,
        cart_a=ok(buyer_a.get("cart", "/v1/cart")),
        cart_b=ok(buyer_b.get("cart", "/v1/cart")),
    )


def _order_of(cart: dict[str, Any]) -> dict[str, Any]:
    """The `order` part of a checkout request, as orders builds it, for the whole cart."""
    return {
        "order_id": str(uuid.uuid4()),
        "cart_id": cart["id"],
        "cart_version": cart["version"],
        "total": "0.00",
        "currency": "EUR",
        "placed_by": {"id": "forger", "name": "Forger"},
        "items": [{"sku": i["sku"], "quantity": i["quantity"]} for i in cart["items"]],
    }


async def _checkout(
    shop: Shop, body: dict[str, Any], token: str | None, *, user: str = "orders"
) -> dict[str, Any]:
    """Publish a checkout request as a client of the bus would; cart's reply."""
    nc = await bus_client(shop.world.admin.stack, user)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        reply = await nc.request(
            CHECKOUT_SUBJECT, json.dumps(body).encode(), timeout=5, headers=headers
        )
    finally:
        await nc.close()
    answer: dict[str, Any] = json.loads(reply.data)
    return answer


def _stopped_session_token(shop: Shop) -> str:
    rep = shop.world.login(shop.world.rep)
    acting, started = shop.world.act_as(rep, shop.world.org_a)
    assert acting.delete("identity", "/v1/acting-as/current").status_code == 204

    def cart_refuses() -> bool:
        return acting.get("cart", "/v1/cart").status_code == 401

    wait_until(cart_refuses, what="cart knows the acting session ended")
    return str(started["access_token"])


# (attack name, token of the forger, which cart it names, words of the refusal)
Forgery = tuple[Callable[[Shop], str | None], str, str]

FORGERIES: dict[str, Forgery] = {
    "no_token": (lambda s: None, "a", "no bearer token"),
    "garbage_token": (lambda s: "not-a-jwt", "a", "malformed bearer token"),
    "token_signed_by_another_key": (
        lambda s: signed_by_another_key(str(s.buyer_a.token)),
        "a",
        "invalid token",
    ),
    "token_of_another_org": (lambda s: s.buyer_b.token, "a", "not allowed to place"),
    "valid_token_other_orgs_cart": (lambda s: s.buyer_a.token, "b", "not allowed to place"),
    "viewer_token": (lambda s: s.world.login(s.world.viewer_a).token, "a", "not allowed to place"),
    "view_mode_session_token": (
        lambda s: s.world.act_as(s.world.login(s.world.rep), s.world.org_a, "view")[0].token,
        "a",
        "not allowed to place",
    ),
    "stopped_session_token": (_stopped_session_token, "a", "acting session has ended"),
}


@pytest.mark.parametrize("attack", FORGERIES)
async def test_forged_checkout_request_empties_no_cart(shop: Shop, attack: str) -> None:
    forger_token, which, words = FORGERIES[attack]
    token = forger_token(shop)
    target = shop.cart_a if which == "a" else shop.cart_b
    owner = shop.buyer_a if which == "a" else shop.buyer_b
    rep_id = shop.world.rep["id"]
    # The old contract's context, naming someone else as the actor: cart must ignore it.
    body = {
        "order": _order_of(target),
        "context": {
            "actor_id": rep_id,
            "actor_org_id": "seller",
            "subject_org_id": target["org_id"],
            "subject_user_id": None,
            "acting_session_id": None,
            "policy_revision": "forged",
        },
    }

    reply = await _checkout(shop, body, token)

    assert reply["ok"] is False, reply
    assert words in reply["error"], reply
    assert ok(owner.get("cart", "/v1/cart")) == target

    # A real order from A's cart is the sentinel: once its checkout is audited, a checkout
    # the forgery caused (published before it) would be audited too.
    order = ok(
        shop.buyer_a.post("orders", "/v1/orders", headers={"Idempotency-Key": uuid.uuid4().hex}),
        201,
    )
    assert ok(shop.buyer_a.get("cart", "/v1/cart"))["items"] == []
    audit = reviewer(shop.world)

    def checked_out() -> list[dict[str, Any]]:
        return audit_events(
            audit, subject_org_id=shop.world.org_a["id"], type="com.onbehalf.cart.checked_out"
        )

    [event] = wait_until(checked_out, what="the real order's checkout audited")
    assert event["data"]["order_id"] == order["id"]
    assert event["actor"]["id"] == shop.world.buyer_a["id"]
    assert audit_events(audit, actor_id=rep_id, type="com.onbehalf.cart.checked_out") == []
    assert (
        audit_events(
            audit, subject_org_id=shop.world.org_b["id"], type="com.onbehalf.cart.checked_out"
        )
        == []
    )
    assert ok(shop.buyer_b.get("cart", "/v1/cart")) == shop.cart_b


async def test_checkout_request_acts_for_the_token_never_for_the_body(shop: Shop) -> None:
    """A genuine token checks out its own organisation's cart, and the event names the
    token's holder, whatever actor the body claims."""
    body = {
        "order": _order_of(shop.cart_a),
        "context": {
            "actor_id": shop.world.rep["id"],
            "actor_org_id": "seller",
            "subject_org_id": shop.world.org_a["id"],
            "subject_user_id": None,
            "acting_session_id": None,
            "policy_revision": "forged",
        },
    }

    reply = await _checkout(shop, body, shop.buyer_a.token)

    assert reply == {"ok": True}
    assert ok(shop.buyer_a.get("cart", "/v1/cart"))["items"] == []
    audit = reviewer(shop.world)

    def checked_out() -> list[dict[str, Any]]:
        return audit_events(
            audit, subject_org_id=shop.world.org_a["id"], type="com.onbehalf.cart.checked_out"
        )

    [event] = wait_until(checked_out, what="the checkout audited")
    assert event["data"]["order_id"] == body["order"]["order_id"]
    assert event["actor"]["id"] == shop.world.buyer_a["id"]
    assert event["subject"]["user_id"] == shop.world.buyer_a["id"]


async def test_an_order_placed_while_acting_empties_the_cart_under_the_acting_staff(
    shop: Shop,
) -> None:
    """Orders forwards the caller's token: the cart is empty when the order is answered, and
    the checkout names the staff member and their session."""
    acting, started = shop.world.act_as(shop.world.login(shop.world.rep), shop.world.org_a)
    order = ok(
        acting.post("orders", "/v1/orders", headers={"Idempotency-Key": uuid.uuid4().hex}), 201
    )
    assert ok(acting.get("cart", "/v1/cart"))["items"] == []
    audit = reviewer(shop.world)

    def checked_out() -> list[dict[str, Any]]:
        return audit_events(
            audit, subject_org_id=shop.world.org_a["id"], type="com.onbehalf.cart.checked_out"
        )

    [event] = wait_until(checked_out, what="the checkout audited")
    assert event["data"]["order_id"] == order["id"]
    assert event["actor"]["id"] == shop.world.rep["id"]
    assert event["acting_session_id"] == started["session_id"]


async def test_orders_sends_no_actor_in_the_checkout_body(shop: Shop) -> None:
    """What orders puts on the bus: the order and the caller's bearer token, no actor."""
    nc = await bus_client(shop.world.admin.stack, "cart")
    try:
        sub = await nc.subscribe(CHECKOUT_SUBJECT)
        await nc.flush()
        with httpx.Client(timeout=15.0) as client:
            api = Api(stack=shop.world.admin.stack, client=client, token=shop.buyer_a.token)
            # In a thread: the loop must keep reading from NATS while orders answers.
            placed = await asyncio.to_thread(
                api.post, "orders", "/v1/orders", headers={"Idempotency-Key": uuid.uuid4().hex}
            )
        assert placed.status_code == 201, placed.text
        message = await sub.next_msg(timeout=5)
    finally:
        await nc.close()
    body = json.loads(message.data)
    authorization = (message.headers or {}).get("Authorization")

    assert set(body) == {"order"}
    assert body["order"]["order_id"] == placed.json()["id"]
    assert authorization == f"Bearer {shop.buyer_a.token}"
