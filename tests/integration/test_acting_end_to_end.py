"""A sales rep acts for a customer end to end: find, act, see the customer's world, order, audit."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.support import World, audit_events, ok, security_reviewer, wait_until


def test_rep_acts_for_customer_and_order_belongs_to_customer(world: World) -> None:
    rep = world.login(world.rep)
    buyer = world.login(world.buyer_a)

    # The rep finds A (and only the customers they may act for).
    found = ok(rep.get("identity", "/v1/customers", params={"q": world.org_a["name"]}))
    assert [c["id"] for c in found["items"]] == [world.org_a["id"]]
    assert found["items"][0]["contract_number"] == world.org_a["contract_number"]
    listed = ok(rep.get("identity", "/v1/customers"))
    assert world.org_b["id"] not in {c["id"] for c in listed["items"]}

    acting, started = world.act_as(rep, world.org_a)
    assert started["mode"] == "full"
    assert started["actor"] == {"id": world.rep["id"], "name": world.rep["name"]}
    assert started["subject"] == {"org_id": world.org_a["id"], "name": world.org_a["name"]}

    badge = ok(acting.get("identity", "/v1/acting-as/current"))
    assert badge["actor"]["name"] == world.rep["name"]
    assert badge["subject"]["name"] == world.org_a["name"]
    assert badge["session_id"] == started["session_id"]
    me = ok(acting.get("identity", "/v1/me"))
    assert me["id"] == world.rep["id"] and me["acting_as"]["subject"]["org_id"] == world.org_a["id"]

    # Exactly what A's own buyer sees: A's assortment at A's prices.
    seen_by_rep = ok(acting.get("catalog", "/v1/products"))
    seen_by_buyer = ok(buyer.get("catalog", "/v1/products"))
    assert seen_by_rep == seen_by_buyer
    prices = {p["sku"]: p["price"] for p in seen_by_rep["items"]}
    assert prices == {world.skus[0]: "7.50", world.skus[1]: "11.00"}

    cart = ok(acting.post("cart", "/v1/cart/items", json={"sku": world.skus[0], "quantity": 2}))
    cart = ok(acting.post("cart", "/v1/cart/items", json={"sku": world.skus[1], "quantity": 1}))
    assert cart["org_id"] == world.org_a["id"]
    assert [(i["sku"], i["quantity"], i["unit_price"]) for i in cart["items"]] == [
        (world.skus[0], 2, "7.50"),
        (world.skus[1], 1, "11.00"),
    ]
    assert ok(buyer.get("cart", "/v1/cart")) == cart  # the customer's own cart

    order = ok(acting.post("orders", "/v1/orders", headers={"Idempotency-Key": "order-1"}), 201)
    assert order["customer_org_id"] == world.org_a["id"]
    assert order["placed_by"] == {"id": world.rep["id"], "name": world.rep["name"]}
    assert order["acting_session_id"] == started["session_id"]
    assert order["placed_on_behalf"] is True
    assert order["total"] == "26.00" and order["currency"] == "EUR"

    history = ok(buyer.get("orders", "/v1/orders"))
    assert [o["id"] for o in history["items"]] == [order["id"]]
    assert history["items"][0]["placed_by"]["name"] == world.rep["name"]
    assert ok(buyer.get("orders", f"/v1/orders/{order['id']}")) == order

    # The order emptied the cart it came from before the response came back.
    assert ok(buyer.get("cart", "/v1/cart"))["items"] == []

    reviewer = security_reviewer(world.admin)
    wanted = {
        "com.onbehalf.identity.acting_session.started",
        "com.onbehalf.cart.item.added",
        "com.onbehalf.orders.order.placed",
    }

    def recorded() -> list[dict[str, Any]] | None:
        events = audit_events(reviewer, session_id=started["session_id"])
        return events if wanted <= {e["type"] for e in events} else None

    events = wait_until(recorded, what="session start, item added, order placed audited")
    for event in events:
        assert event["actor"]["id"] == world.rep["id"]
        assert event["subject"]["org_id"] == world.org_a["id"]
        assert event["acting_session_id"] == started["session_id"]
        assert event["policy_revision"]
    placed = next(e for e in events if e["type"] == "com.onbehalf.orders.order.placed")
    assert placed["data"]["order_id"] == order["id"]


def test_same_idempotency_key_returns_the_same_order(world: World) -> None:
    buyer = world.login(world.buyer_a)
    ok(buyer.post("cart", "/v1/cart/items", json={"sku": world.skus[1], "quantity": 3}))
    first = buyer.post("orders", "/v1/orders", headers={"Idempotency-Key": "same"})
    again = buyer.post("orders", "/v1/orders", headers={"Idempotency-Key": "same"})
    assert first.status_code == 201, first.text
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    assert len(ok(buyer.get("orders", "/v1/orders"))["items"]) == 1
    different = buyer.post(
        "orders",
        "/v1/orders",
        headers={"Idempotency-Key": "same"},
        json={"purchase_order_number": "PO-2"},
    )
    assert different.status_code == 422
    assert "Idempotency-Key" in different.json()["detail"]
    placed_by_buyer = first.json()
    assert placed_by_buyer["placed_by"]["id"] == world.buyer_a["id"]
    assert placed_by_buyer["placed_on_behalf"] is False


def test_the_same_cart_is_not_ordered_twice(world: World) -> None:
    """Two tabs, two keys, one cart: the second order is refused, not placed twice."""
    buyer = world.login(world.buyer_a)
    ok(buyer.post("cart", "/v1/cart/items", json={"sku": world.skus[0], "quantity": 1}))
    cart_before = ok(buyer.get("cart", "/v1/cart"))
    first = ok(buyer.post("orders", "/v1/orders", headers={"Idempotency-Key": "tab-1"}), 201)
    assert first["items"][0]["quantity"] == 1
    assert ok(buyer.get("cart", "/v1/cart"))["items"] == []
    assert ok(buyer.get("cart", "/v1/cart"))["version"] > cart_before["version"]
    second = buyer.post("orders", "/v1/orders", headers={"Idempotency-Key": "tab-2"})
    assert second.status_code == 422 and "empty" in second.json()["detail"]
    assert len(ok(buyer.get("orders", "/v1/orders"))["items"]) == 1


def test_racing_orders_from_one_cart_place_one_order(world: World) -> None:
    buyer = world.login(world.buyer_a)
    ok(buyer.post("cart", "/v1/cart/items", json={"sku": world.skus[1], "quantity": 2}))
    barrier = threading.Barrier(4)

    def place(key: str) -> int:
        barrier.wait()
        return buyer.post("orders", "/v1/orders", headers={"Idempotency-Key": key}).status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = sorted(pool.map(place, [f"race-{n}" for n in range(4)]))
    assert statuses.count(201) == 1, statuses
    assert set(statuses) <= {201, 409, 422}, statuses
    assert len(ok(buyer.get("orders", "/v1/orders"))["items"]) == 1


def test_customers_never_see_each_others_orders(world: World) -> None:
    buyer_a, buyer_b = world.login(world.buyer_a), world.login(world.buyer_b)
    ok(buyer_a.post("cart", "/v1/cart/items", json={"sku": world.skus[0], "quantity": 1}))
    order = ok(buyer_a.post("orders", "/v1/orders", headers={"Idempotency-Key": "a-1"}), 201)
    assert buyer_b.get("orders", f"/v1/orders/{order['id']}").status_code == 404
    assert ok(buyer_b.get("orders", "/v1/orders"))["items"] == []
    # B sees every product at base price: no assortment and no customer price for B.
    # The catalog pages (and the shared stack holds many products): ask for each SKU.
    prices = {
        p["sku"]: p["price"]
        for sku in world.skus
        for p in ok(buyer_b.get("catalog", "/v1/products", params={"q": sku}))["items"]
    }
    assert {sku: prices[sku] for sku in world.skus} == {
        world.skus[0]: "10.00",
        world.skus[1]: "11.00",
        world.skus[2]: "12.00",
    }


def test_view_mode_and_viewer_read_but_change_nothing(world: World) -> None:
    csr = world.staff(roles=["csr"], permissions=["view_as_customer"], caretaker_of=[world.org_a])
    csr_api = world.admin.login(csr["email"])
    refused_full = csr_api.post(
        "identity", "/v1/acting-as", json={"customer_org_id": world.org_a["id"], "mode": "full"}
    )
    assert refused_full.status_code == 403
    viewing, _ = world.act_as(csr_api, world.org_a, mode="view")
    assert ok(viewing.get("cart", "/v1/cart"))["org_id"] == world.org_a["id"]
    refused = viewing.post("cart", "/v1/cart/items", json={"sku": world.skus[0], "quantity": 1})
    assert refused.status_code == 403
    assert refused.json()["reason"] == "a view-mode acting session cannot change anything"
    refused = viewing.post("orders", "/v1/orders", headers={"Idempotency-Key": "v"})
    assert refused.status_code == 403

    viewer = world.login(world.viewer_a)
    refused = viewer.post("cart", "/v1/cart/items", json={"sku": world.skus[0], "quantity": 1})
    assert refused.status_code == 403
    assert refused.json()["reason"] == "a viewer cannot change the cart or place orders"
    assert ok(viewer.get("cart", "/v1/cart"))["items"] == []
