"""Optimistic concurrency on the cart: the version is the ETag; a stale If-Match gets 412, writes nothing."""

from __future__ import annotations

from typing import Any

from tests.cart.people import acting_staff, at_once
from tests.support import World, ok, wait_until


def test_a_stale_if_match_gets_412_and_changes_nothing(world: World) -> None:
    buyer = world.login(world.buyer_a)
    rep, _, _ = acting_staff(world)
    sku, other = world.skus[0], world.skus[1]

    first = buyer.get("cart", "/v1/cart")
    version = ok(first)["version"]
    assert first.headers["ETag"] == f'"{version}"'

    changed = buyer.post(
        "cart",
        "/v1/cart/items",
        json={"sku": sku, "quantity": 1},
        headers={"If-Match": first.headers["ETag"]},
    )
    cart = ok(changed)
    assert cart["version"] == version + 1
    assert changed.headers["ETag"] == f'"{version + 1}"'

    # The rep changes the cart too; the buyer's copy is stale now.
    ok(rep.post("cart", "/v1/cart/items", json={"sku": other, "quantity": 2}))
    current = ok(buyer.get("cart", "/v1/cart"))
    stale = {"If-Match": changed.headers["ETag"]}
    for response in (
        buyer.patch("cart", f"/v1/cart/items/{sku}", json={"quantity": 5}, headers=stale),
        buyer.delete("cart", f"/v1/cart/items/{sku}", headers=stale),
        buyer.post("cart", "/v1/cart/items", json={"sku": sku, "quantity": 1}, headers=stale),
    ):
        assert response.status_code == 412, response.text
        body = response.json()
        assert body["current_version"] == current["version"]
        assert "changed since you read it" in body["detail"]
    assert ok(buyer.get("cart", "/v1/cart")) == current

    # The current version, a list that contains it, `*` and no header all go through.
    def patch(quantity: int, if_match: str | None) -> dict[str, Any]:
        headers = {"If-Match": if_match} if if_match else {}
        path = f"/v1/cart/items/{sku}"
        return dict(ok(buyer.patch("cart", path, json={"quantity": quantity}, headers=headers)))

    current = patch(3, f'"{current["version"]}"')
    current = patch(4, f'"1", W/"{current["version"]}"')
    current = patch(5, "*")
    assert patch(6, None)["version"] == current["version"] + 1


def test_two_changes_with_the_same_version_exactly_one_goes_through(world: World) -> None:
    buyer = world.login(world.buyer_a)
    etag = buyer.get("cart", "/v1/cart").headers["ETag"]
    calls = [
        (buyer, "POST", "cart", "/v1/cart/items", {"json": {"sku": sku, "quantity": 1}})
        for sku in world.skus[:2]
    ]
    for _, _, _, _, kwargs in calls:
        kwargs["headers"] = {"If-Match": etag}
    responses = at_once(calls)
    assert sorted(r.status_code for r in responses) == [200, 412], [r.text for r in responses]
    assert len(ok(buyer.get("cart", "/v1/cart"))["items"]) == 1


def test_the_version_never_goes_back_across_a_checkout(world: World) -> None:
    buyer = world.login(world.buyer_a)
    cart = ok(buyer.post("cart", "/v1/cart/items", json={"sku": world.skus[0], "quantity": 1}))
    ok(buyer.post("orders", "/v1/orders", headers={"Idempotency-Key": "version-order"}), 201)
    emptied = wait_until(
        lambda: (c := ok(buyer.get("cart", "/v1/cart")))["items"] == [] and c,
        what="the cart emptied by the order",
    )
    assert emptied["version"] > cart["version"]
    stale = buyer.post(
        "cart",
        "/v1/cart/items",
        json={"sku": world.skus[0], "quantity": 1},
        headers={"If-Match": f'"{cart["version"]}"'},
    )
    assert stale.status_code == 412
    fresh = ok(
        buyer.post(
            "cart",
            "/v1/cart/items",
            json={"sku": world.skus[0], "quantity": 1},
            headers={"If-Match": f'"{emptied["version"]}"'},
        )
    )
    assert fresh["id"] != cart["id"] and fresh["version"] == emptied["version"] + 1
