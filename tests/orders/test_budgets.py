"""Budgets end to end: a customer admin sets them, orders spend them (409 with what is left, or
awaiting approval), assisted orders count against the budget chosen for them, cancelling gives
the amount back, and an acting session never touches them."""

from __future__ import annotations

from typing import Any

from tests.cart.people import acting_staff, customer_admin, reviewer
from tests.support import Api, World, audit_events, ok, unique, wait_until


def _order(api: Api, world: World, *, expected: int = 201) -> dict[str, Any]:
    """Order the first product (7.50 for A) once; the cart is empty again afterwards."""
    ok(api.post("cart", "/v1/cart/items", json={"sku": world.skus[0], "quantity": 1}))
    response = api.post("orders", "/v1/orders", headers={"Idempotency-Key": unique("k")})
    body = ok(response, expected)
    if expected == 201:
        wait_until(lambda: ok(api.get("cart", "/v1/cart"))["items"] == [], what="cart emptied")
    return dict(body)


def _budget(admin: Api, budget_id: str) -> dict[str, Any]:
    [found] = [b for b in ok(admin.get("orders", "/v1/budgets"))["items"] if b["id"] == budget_id]
    return dict(found)


def test_a_buyers_budget_refuses_with_what_is_left_and_cancelling_gives_back(
    world: World,
) -> None:
    admin, _ = customer_admin(world, world.org_a)
    buyer = world.login(world.buyer_a)
    budget = ok(
        admin.post(
            "orders",
            "/v1/budgets",
            json={
                "kind": "employee",
                "user_id": world.buyer_a["id"],
                "amount": "10.00",
                "currency": "EUR",
                "period": "month",
                "on_exceed": "refuse",
            },
        ),
        201,
    )
    assert budget["spent"] == "0.00" and budget["remaining"] == "10.00"

    first = _order(buyer, world)
    assert first["status"] == "placed"
    assert _budget(admin, budget["id"])["remaining"] == "2.50"

    refused = _order(buyer, world, expected=409)
    assert refused["reason"] == "budget_exceeded"
    assert refused["remaining"] == "2.50" and refused["currency"] == "EUR"
    assert "2.50 EUR are left" in refused["detail"]

    ok(admin.post("orders", f"/v1/orders/{first['id']}/cancel"))
    assert _budget(admin, budget["id"])["spent"] == "0.00"
    # The refused order's cart is still there: ordering it now fits again.
    again = ok(buyer.post("orders", "/v1/orders", headers={"Idempotency-Key": unique("k")}), 201)
    assert again["status"] == "placed"

    # Bad input is a clear 422, not a 500.
    bad = admin.post(
        "orders",
        "/v1/budgets",
        json={
            "kind": "employee",
            "amount": "5",
            "currency": "EUR",
            "period": "week",
            "on_exceed": "refuse",
        },
    )
    assert bad.status_code == 422 and "period" in bad.text
    no_user = admin.post(
        "orders",
        "/v1/budgets",
        json={
            "kind": "employee",
            "amount": "5",
            "currency": "EUR",
            "period": "year",
            "on_exceed": "refuse",
        },
    )
    assert no_user.status_code == 422 and "user_id" in no_user.json()["detail"]
    # Buyers spend within budgets; they do not see or set them.
    assert buyer.get("orders", "/v1/budgets").status_code == 403


def test_assisted_orders_wait_for_the_customer_admins_approval(world: World) -> None:
    admin, admin_user = customer_admin(world, world.org_a)
    rep, rep_user, session = acting_staff(world)
    assisted = ok(
        admin.post(
            "orders",
            "/v1/budgets",
            json={
                "kind": "cost_center",
                "name": "Orders placed for us by the seller",
                "amount": "5.00",
                "currency": "EUR",
                "period": "quarter",
                "on_exceed": "approval",
                "for_assisted_orders": True,
            },
        ),
        201,
    )
    # The buyer has no budget of their own: their orders are not limited by this one.
    assert _order(world.login(world.buyer_a), world)["status"] == "placed"

    waiting = _order(rep, world)
    assert waiting["status"] == "awaiting_approval" and waiting["placed_on_behalf"] is True
    assert _budget(admin, assisted["id"])["spent"] == "0.00"

    # Staff never approve, least of all their own orders; the acting session never sees budgets.
    for method, path in [
        ("POST", f"/v1/orders/{waiting['id']}/approve"),
        ("GET", "/v1/budgets"),
        ("POST", "/v1/budgets"),
        ("DELETE", f"/v1/budgets/{assisted['id']}"),
    ]:
        kwargs: dict[str, Any] = {}
        if method == "POST" and path == "/v1/budgets":
            kwargs["json"] = {
                "kind": "cost_center",
                "name": "x",
                "amount": "1",
                "currency": "EUR",
                "period": "year",
                "on_exceed": "refuse",
            }
        refused = rep.request(method, "orders", path, **kwargs)
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json()["reason"] == (
            "budgets are never managed or approved while acting on behalf of a customer"
        )

    approved = ok(admin.post("orders", f"/v1/orders/{waiting['id']}/approve"))
    assert approved["status"] == "placed"
    assert _budget(admin, assisted["id"])["spent"] == "7.50"
    assert admin.post("orders", f"/v1/orders/{waiting['id']}/reject").status_code == 409

    second = _order(rep, world)
    assert second["status"] == "awaiting_approval"
    assert ok(admin.post("orders", f"/v1/orders/{second['id']}/reject"))["status"] == "rejected"
    assert _budget(admin, assisted["id"])["spent"] == "7.50"

    audit = reviewer(world)
    decided = wait_until(
        lambda: audit_events(
            audit, actor_id=admin_user["id"], type="com.onbehalf.orders.order.decided"
        ),
        what="both decisions audited",
    )
    assert {event["data"]["decision"] for event in decided} <= {"approved", "rejected"}
    charged = wait_until(
        lambda: audit_events(
            audit, session_id=session["session_id"], type="com.onbehalf.orders.budget.charged"
        ),
        what="the assisted orders' charges audited with the acting session",
    )
    assert charged[0]["actor"]["id"] == rep_user["id"]
    wait_until(
        lambda: (
            len(
                audit_events(
                    audit, actor_id=admin_user["id"], type="com.onbehalf.orders.order.decided"
                )
            )
            == 2
        ),
        what="both decisions audited",
    )


def test_a_budget_for_assisted_orders_is_said_with_a_boolean(world: World) -> None:
    """`for_assisted_orders` is true or false; 1 or "yes" is refused and no budget is made."""
    admin, _ = customer_admin(world, world.org_a)
    body = {
        "kind": "cost_center",
        "name": unique("Assisted"),
        "amount": "5.00",
        "currency": "EUR",
        "period": "quarter",
        "on_exceed": "approval",
    }
    before = ok(admin.get("orders", "/v1/budgets"))["items"]
    for value in (1, "yes", 0):
        refused = admin.post("orders", "/v1/budgets", json={**body, "for_assisted_orders": value})
        assert refused.status_code == 422, refused.text
        assert "for_assisted_orders" in refused.json()["detail"]
    assert ok(admin.get("orders", "/v1/budgets"))["items"] == before
