"""Cancelling an order: the customer's admin or full-mode acting staff, only while `placed`, audited."""

from __future__ import annotations

from typing import Any

from tests.cart.people import acting_staff, customer_admin, reviewer
from tests.support import Api, World, audit_events, ok, unique, wait_until


def _place(api: Api, world: World, sku_index: int = 0) -> dict[str, Any]:
    ok(api.post("cart", "/v1/cart/items", json={"sku": world.skus[sku_index], "quantity": 1}))
    order = ok(api.post("orders", "/v1/orders", headers={"Idempotency-Key": unique("k")}), 201)
    # Wait for the checkout so that the next order starts from an empty cart.
    wait_until(lambda: ok(api.get("cart", "/v1/cart"))["items"] == [], what="cart emptied")
    return dict(order)


def test_the_customers_admin_cancels_a_placed_order_once(world: World) -> None:
    admin, admin_user = customer_admin(world, world.org_a)
    buyer = world.login(world.buyer_a)
    order = _place(buyer, world)
    path = f"/v1/orders/{order['id']}/cancel"

    cancelled = ok(admin.post("orders", path, json={"reason": "ordered twice"}))
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancellation"]["cancelled_by"] == {
        "id": admin_user["id"],
        "name": admin_user["name"],
    }
    assert cancelled["cancellation"]["cancelled_on_behalf"] is False
    assert cancelled["cancellation"]["reason"] == "ordered twice"
    assert ok(buyer.get("orders", f"/v1/orders/{order['id']}")) == cancelled

    again = admin.post("orders", path)
    assert again.status_code == 409
    assert again.json()["status"] == "cancelled"
    assert "only a placed order can be cancelled" in again.json()["detail"]

    audit = reviewer(world)
    [event] = wait_until(
        lambda: audit_events(
            audit, actor_id=admin_user["id"], type="com.onbehalf.orders.order.cancelled"
        ),
        what="the cancellation audited",
    )
    assert event["subject"] == {"org_id": world.org_a["id"], "user_id": admin_user["id"]}
    assert event["data"]["order_id"] == order["id"]
    assert event["data"]["placed_by"]["id"] == world.buyer_a["id"]


def test_acting_staff_cancel_on_behalf_and_history_says_so(world: World) -> None:
    rep, rep_user, rep_session = acting_staff(world)
    buyer = world.login(world.buyer_a)
    order = _place(rep, world)
    cancelled = ok(rep.post("orders", f"/v1/orders/{order['id']}/cancel"))
    assert cancelled["cancellation"]["cancelled_on_behalf"] is True
    assert cancelled["cancellation"]["acting_session_id"] == rep_session["session_id"]
    assert cancelled["cancellation"]["cancelled_by"]["name"] == rep_user["name"]

    [seen] = ok(buyer.get("orders", "/v1/orders"))["items"]
    assert seen["placed_on_behalf"] is True and seen["placed_by"]["name"] == rep_user["name"]
    assert seen["status"] == "cancelled" and seen["cancellation"]["cancelled_on_behalf"] is True

    audit = reviewer(world)
    [event] = wait_until(
        lambda: audit_events(
            audit, session_id=rep_session["session_id"], type="com.onbehalf.orders.order.cancelled"
        ),
        what="the acting cancellation audited",
    )
    assert event["actor"]["id"] == rep_user["id"]
    assert event["subject"]["org_id"] == world.org_a["id"]
    assert event["data"]["cancelled_by"]["name"] == rep_user["name"]


def test_who_may_not_cancel_and_why(world: World) -> None:
    buyer = world.login(world.buyer_a)
    order = _place(buyer, world)
    path = f"/v1/orders/{order['id']}/cancel"

    refusals = [
        (buyer, "only the customer's admins cancel orders"),
        (world.login(world.viewer_a), "only the customer's admins cancel orders"),
        (acting_staff(world, mode="view")[0], "a view-mode acting session cannot cancel orders"),
        (
            world.login(world.rep),
            "staff reach a customer's catalog, cart and orders only by acting as the customer",
        ),
    ]
    for api, reason in refusals:
        response = api.post("orders", path)
        assert response.status_code == 403, response.text
        assert response.json()["reason"] == reason

    other_admin, _ = customer_admin(world, world.org_b)
    assert other_admin.post("orders", path).status_code == 404
    admin, _ = customer_admin(world, world.org_a)
    assert admin.post("orders", "/v1/orders/no-such-order/cancel").status_code == 404
    assert admin.post("orders", path, json={"reason": "x" * 501}).status_code == 422
    assert admin.post("orders", path, json={"status": "placed"}).status_code == 422
    assert ok(buyer.get("orders", f"/v1/orders/{order['id']}"))["status"] == "placed"


def test_view_mode_staff_cannot_place_and_the_holder_places_from_a_locked_cart(
    world: World,
) -> None:
    viewing, _, _ = acting_staff(world, mode="view")
    refused = viewing.post("orders", "/v1/orders", headers={"Idempotency-Key": "view"})
    assert refused.status_code == 403

    rep, rep_user, _ = acting_staff(world)
    buyer = world.login(world.buyer_a)
    ok(rep.post("cart", "/v1/cart/lock"))
    ok(rep.post("cart", "/v1/cart/items", json={"sku": world.skus[0], "quantity": 2}))
    blocked = buyer.post("orders", "/v1/orders", headers={"Idempotency-Key": "buyer"})
    assert blocked.status_code == 409 and rep_user["name"] in blocked.json()["detail"]
    order = ok(rep.post("orders", "/v1/orders", headers={"Idempotency-Key": "holder"}), 201)
    assert order["placed_on_behalf"] is True and order["total"] == "15.00"
