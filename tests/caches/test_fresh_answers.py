"""Caches on the request path never outlive what they cache: a revoked acting token is
refused within a second although its verification is cached, a price change is what the
next cart line and order are priced at, and an order's total is the sum of its lines."""

from __future__ import annotations

import time
from decimal import Decimal

from tests.support import World, ok, wait_until

SERVICES_READS = {"cart": "/v1/cart", "catalog": "/v1/products", "orders": "/v1/orders"}


def test_a_revoked_acting_token_is_refused_within_a_second_though_cached(world: World) -> None:
    acting, _ = world.act_as(world.login(world.rep), world.org_a)
    # Verified (and its decisions cached) in every service, several times.
    for _ in range(3):
        for service, path in SERVICES_READS.items():
            ok(acting.get(service, path))
    stopped_at = time.monotonic()
    assert acting.delete("identity", "/v1/acting-as/current").status_code == 204
    for service, path in SERVICES_READS.items():

        def refused(service: str = service, path: str = path) -> bool:
            return acting.get(service, path).status_code == 401

        wait_until(
            refused,
            timeout=max(0.05, 1.0 - (time.monotonic() - stopped_at)),
            what=f"{service} refuses the stopped session's cached token within a second",
        )
    assert time.monotonic() - stopped_at < 1.5


def test_a_price_change_is_what_the_next_line_and_order_cost(world: World) -> None:
    acting, _ = world.act_as(world.login(world.rep), world.org_a)
    sku = world.skus[1]  # base price 11.00, in A's assortment
    first = ok(acting.post("cart", "/v1/cart/items", json={"sku": sku, "quantity": 1}))
    assert Decimal(first["items"][0]["unit_price"]) == Decimal("11.00")
    ok(
        world.admin.put(
            "catalog", f"/v1/customers/{world.org_a['id']}/prices/{sku}", json={"price": "4.25"}
        )
    )
    # The very next quote (adding one more) is at the new price...
    again = ok(acting.post("cart", "/v1/cart/items", json={"sku": sku, "quantity": 1}))
    line = next(item for item in again["items"] if item["sku"] == sku)
    assert Decimal(line["unit_price"]) == Decimal("4.25")
    # ... and so is the order, whose total is exactly the sum of its priced lines.
    order = ok(acting.post("orders", "/v1/orders", headers={"Idempotency-Key": sku}), 201)
    assert [(i["sku"], Decimal(i["unit_price"])) for i in order["items"]] == [
        (sku, Decimal("4.25"))
    ]
    lines = sum(Decimal(i["unit_price"]) * i["quantity"] for i in order["items"])
    assert Decimal(order["total"]) == lines == Decimal("8.50")
    # A second change after the order: the next order is at that price again.
    ok(
        world.admin.put(
            "catalog", f"/v1/customers/{world.org_a['id']}/prices/{sku}", json={"price": "5.00"}
        )
    )
    ok(acting.post("cart", "/v1/cart/items", json={"sku": sku, "quantity": 3}))
    second = ok(acting.post("orders", "/v1/orders", headers={"Idempotency-Key": sku + "-2"}), 201)
    assert Decimal(second["total"]) == Decimal("15.00")
    assert Decimal(second["total"]) == sum(
        Decimal(i["unit_price"]) * i["quantity"] for i in second["items"]
    )
