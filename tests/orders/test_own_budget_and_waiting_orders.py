"""What a buyer sees and does around budgets: what is left of their own budget
(`GET /v1/budgets/mine`), the orders in one status (`GET /v1/orders?status=`), and withdrawing
their own order while it awaits approval (nothing was spent; a colleague's is not theirs)."""

from __future__ import annotations

from typing import Any

from tests.cart.people import acting_staff, customer_admin
from tests.support import Api, World, ok, unique, wait_until


def _order(api: Api, world: World) -> dict[str, Any]:
    """Order the first product (7.50 for A) once; the cart is empty again afterwards."""
    ok(api.post("cart", "/v1/cart/items", json={"sku": world.skus[0], "quantity": 1}))
    body = ok(api.post("orders", "/v1/orders", headers={"Idempotency-Key": unique("k")}), 201)
    wait_until(lambda: ok(api.get("cart", "/v1/cart"))["items"] == [], what="cart emptied")
    return dict(body)


def _budget(admin: Api, body: dict[str, Any]) -> dict[str, Any]:
    base = {"currency": "EUR", "period": "month"}
    return dict(ok(admin.post("orders", "/v1/budgets", json={**base, **body}), 201))


def test_a_buyer_reads_what_is_left_of_their_own_budget_only(world: World) -> None:
    admin, _ = customer_admin(world, world.org_a)
    buyer = world.login(world.buyer_a)
    assert ok(buyer.get("orders", "/v1/budgets/mine")) == {"budget": None}

    colleague = world.customer_user(world.org_a, ["buyer"])
    _budget(
        admin,
        {
            "kind": "cost_center",
            "name": "Purchasing",
            "member_ids": [colleague["id"]],
            "amount": "100.00",
            "on_exceed": "refuse",
        },
    )
    own = _budget(
        admin,
        {
            "kind": "employee",
            "user_id": world.buyer_a["id"],
            "amount": "20.00",
            "on_exceed": "approval",
        },
    )
    _order(buyer, world)
    mine = ok(buyer.get("orders", "/v1/budgets/mine"))["budget"]
    assert mine["id"] == own["id"] and mine["period_key"] == own["period_key"]
    assert (mine["amount"], mine["spent"], mine["remaining"]) == ("20.00", "7.50", "12.50")
    assert "member_ids" not in mine and "user_id" not in mine

    # A cost center's member sees the cost center; nobody sees another's budget this way.
    theirs = ok(world.login(colleague).get("orders", "/v1/budgets/mine"))["budget"]
    assert theirs["name"] == "Purchasing" and theirs["remaining"] == "100.00"

    for who, reason in [
        (world.login(world.viewer_a), "viewers place no orders, so no budget holds theirs"),
        (acting_staff(world)[0], "an acting session has no budget of its own"),
        (world.admin, "staff have no budget"),
    ]:
        refused = who.get("orders", "/v1/budgets/mine")
        assert refused.status_code == 403, refused.text
        assert refused.json()["reason"].startswith(reason)


def test_orders_by_status_and_a_buyer_withdraws_their_waiting_order(world: World) -> None:
    admin, _ = customer_admin(world, world.org_a)
    buyer = world.login(world.buyer_a)
    colleague_user = world.customer_user(world.org_a, ["buyer"])
    colleague = world.login(colleague_user)
    budget = _budget(
        admin,
        {
            "kind": "employee",
            "user_id": world.buyer_a["id"],
            "amount": "5.00",
            "on_exceed": "approval",
        },
    )
    waiting = _order(buyer, world)
    placed = _order(colleague, world)
    assert (waiting["status"], placed["status"]) == ("awaiting_approval", "placed")

    def ids(api: Api, status: str) -> list[str]:
        found = ok(api.get("orders", "/v1/orders", params={"status": status}))["items"]
        return [order["id"] for order in found]

    assert ids(admin, "awaiting_approval") == [waiting["id"]]
    assert ids(buyer, "placed") == [placed["id"]]
    assert ids(admin, "cancelled") == []
    bad = admin.get("orders", "/v1/orders", params={"status": "lost"})
    assert bad.status_code == 422, bad.text

    # A colleague's waiting order is not theirs to withdraw; a placed one is the admins'.
    path = f"/v1/orders/{waiting['id']}/cancel"
    refused = colleague.post("orders", path)
    assert refused.status_code == 403
    assert "a buyer withdraws only their own order awaiting approval" in refused.json()["reason"]
    not_waiting = buyer.post("orders", f"/v1/orders/{placed['id']}/cancel")
    assert not_waiting.json()["reason"] == "only the customer's admins cancel orders"

    withdrawn = ok(buyer.post("orders", path, json={"reason": "ordered the wrong size"}))
    assert withdrawn["status"] == "cancelled"
    assert withdrawn["cancellation"]["cancelled_by"]["id"] == world.buyer_a["id"]
    assert ids(admin, "awaiting_approval") == []
    assert ids(admin, "cancelled") == [waiting["id"]]
    # It had spent nothing, and it can no longer be approved (nor withdrawn twice).
    [after] = [
        b for b in ok(admin.get("orders", "/v1/budgets"))["items"] if b["id"] == budget["id"]
    ]
    assert after["spent"] == "0.00"
    late = admin.post("orders", f"/v1/orders/{waiting['id']}/approve")
    assert late.status_code == 409 and late.json()["status"] == "cancelled"
    assert buyer.post("orders", path).status_code == 403  # no longer waiting: the admins' own
