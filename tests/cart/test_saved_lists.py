"""Saved lists: shared by the customer's users and acting staff, put into the cart whole, policy-decided."""

from __future__ import annotations

from typing import Any

from tests.cart.people import acting_staff, reviewer
from tests.support import World, audit_events, ok, wait_until


def test_customer_and_acting_staff_share_saved_lists(world: World) -> None:
    buyer = world.login(world.buyer_a)
    rep, rep_user, rep_session = acting_staff(world)
    first, second = world.skus[0], world.skus[1]

    created = ok(
        buyer.post(
            "cart",
            "/v1/saved-lists",
            json={"name": "  Weekly  ", "items": [{"sku": first, "quantity": 2}]},
        ),
        201,
    )
    assert created["name"] == "Weekly"
    assert created["created_by"] == {"id": world.buyer_a["id"], "name": world.buyer_a["name"]}
    assert [(i["sku"], i["name"], i["quantity"]) for i in created["items"]] == [
        (first, "Product 0", 2)
    ]
    list_path = f"/v1/saved-lists/{created['id']}"

    # Acting staff see exactly what the customer's users see.
    assert ok(rep.get("cart", "/v1/saved-lists")) == ok(buyer.get("cart", "/v1/saved-lists"))
    assert ok(rep.get("cart", list_path)) == created

    ok(rep.patch("cart", list_path, json={"name": "Weekly order"}))
    ok(rep.post("cart", f"{list_path}/items", json={"sku": second, "quantity": 1}))
    ok(rep.post("cart", f"{list_path}/items", json={"sku": second, "quantity": 2}))
    ok(rep.patch("cart", f"{list_path}/items/{first}", json={"quantity": 4}))
    seen = ok(buyer.get("cart", list_path))
    assert seen["name"] == "Weekly order"
    assert [(i["sku"], i["quantity"]) for i in seen["items"]] == [(first, 4), (second, 3)]

    cart = ok(buyer.post("cart", f"{list_path}/add-to-cart"))
    assert [(i["sku"], i["quantity"], i["unit_price"]) for i in cart["items"]] == [
        (first, 4, "7.50"),  # A's own price, from catalog
        (second, 3, "11.00"),
    ]
    again = ok(rep.post("cart", f"{list_path}/add-to-cart"))
    assert [i["quantity"] for i in again["items"]] == [8, 6]

    ok(buyer.delete("cart", f"{list_path}/items/{second}"))
    assert [i["sku"] for i in ok(rep.get("cart", list_path))["items"]] == [first]
    assert rep.delete("cart", list_path).status_code == 204
    assert buyer.get("cart", list_path).status_code == 404
    assert ok(buyer.get("cart", "/v1/saved-lists"))["items"] == []

    audit = reviewer(world)
    wanted = {
        "com.onbehalf.cart.saved_list.renamed",
        "com.onbehalf.cart.saved_list.item_added",
        "com.onbehalf.cart.saved_list.item_changed",
        "com.onbehalf.cart.saved_list.added_to_cart",
        "com.onbehalf.cart.saved_list.deleted",
    }

    def by_rep() -> list[dict[str, Any]] | None:
        events = audit_events(audit, session_id=rep_session["session_id"])
        return events if wanted <= {e["type"] for e in events} else None

    for event in wait_until(by_rep, what="the rep's list changes audited"):
        assert event["actor"]["id"] == rep_user["id"]
        assert event["subject"]["org_id"] == world.org_a["id"]
    by_buyer = audit_events(audit, actor_id=world.buyer_a["id"])
    assert {
        "com.onbehalf.cart.saved_list.created",
        "com.onbehalf.cart.saved_list.item_removed",
    } <= {e["type"] for e in by_buyer}


def test_saved_list_refusals(world: World) -> None:
    buyer = world.login(world.buyer_a)
    created = ok(
        buyer.post(
            "cart",
            "/v1/saved-lists",
            json={"name": "Mine", "items": [{"sku": world.skus[0], "quantity": 1}]},
        ),
        201,
    )
    list_path = f"/v1/saved-lists/{created['id']}"

    viewer = world.login(world.viewer_a)
    assert ok(viewer.get("cart", list_path)) == created
    refused = viewer.patch("cart", list_path, json={"name": "Viewer's"})
    assert refused.status_code == 403
    assert refused.json()["reason"] == "a viewer cannot change saved lists"

    viewing, _, _ = acting_staff(world, mode="view")
    assert ok(viewing.get("cart", list_path)) == created
    for response in (
        viewing.post("cart", "/v1/saved-lists", json={"name": "x"}),
        viewing.post("cart", f"{list_path}/add-to-cart"),
    ):
        assert response.status_code == 403
        assert response.json()["reason"] == "a view-mode acting session cannot change anything"

    other = world.login(world.buyer_b)
    assert other.get("cart", list_path).status_code == 404
    assert other.patch("cart", list_path, json={"name": "Theirs"}).status_code == 404
    assert other.post("cart", f"{list_path}/add-to-cart").status_code == 404
    assert ok(other.get("cart", "/v1/saved-lists"))["items"] == []

    duplicate = buyer.post("cart", "/v1/saved-lists", json={"name": "Mine"})
    assert duplicate.status_code == 409 and "already exists" in duplicate.json()["detail"]
    ok(buyer.post("cart", "/v1/saved-lists", json={"name": "Other"}), 201)
    clash = buyer.patch("cart", list_path, json={"name": "Other"})
    assert clash.status_code == 409

    bad_bodies = [
        ({"name": ""}, "name"),
        ({"name": "x", "items": [{"sku": "NO-SUCH-SKU", "quantity": 1}]}, "unknown SKU"),
        ({"name": "x", "items": [{"sku": world.skus[2], "quantity": 1}]}, "unknown SKU"),
        ({"name": "x", "items": [{"sku": world.skus[0], "quantity": 0}]}, "quantity"),
        ({"name": "x", "items": [{"sku": world.skus[0], "quantity": 10_000_000}]}, "maximum"),
        ({"name": "x", "items": [{"sku": world.skus[0], "quantity": 1, "price": "1"}]}, "price"),
        ({"name": 5}, "name"),
    ]
    for body, words in bad_bodies:
        response = buyer.post("cart", "/v1/saved-lists", json=body)
        assert response.status_code == 422, (body, response.text)
        assert words in response.json()["detail"], (body, response.json())
    for body, words in [
        ({"sku": "NO-SUCH-SKU", "quantity": 1}, "unknown SKU"),
        ({"sku": world.skus[0], "quantity": -1}, "quantity"),
        ({"sku": world.skus[0], "quantity": "1"}, "quantity"),
    ]:
        response = buyer.post("cart", f"{list_path}/items", json=body)
        assert response.status_code == 422, (body, response.text)
        assert words in response.json()["detail"]
    assert (
        buyer.patch("cart", f"{list_path}/items/{world.skus[1]}", json={"quantity": 1}).status_code
        == 404
    )
    assert buyer.delete("cart", f"{list_path}/items/{world.skus[1]}").status_code == 404

    empty = ok(buyer.post("cart", "/v1/saved-lists", json={"name": "Empty"}), 201)
    response = buyer.post("cart", f"/v1/saved-lists/{empty['id']}/add-to-cart")
    assert response.status_code == 422 and "empty" in response.json()["detail"]

    names = [saved["name"] for saved in ok(buyer.get("cart", "/v1/saved-lists"))["items"]]
    assert names == ["Empty", "Mine", "Other"]
    assert ok(buyer.get("cart", list_path)) == created  # nothing above changed it


def test_a_list_goes_into_a_locked_cart_only_by_the_holder(world: World) -> None:
    buyer = world.login(world.buyer_a)
    rep, rep_user, _ = acting_staff(world)
    created = ok(
        buyer.post(
            "cart",
            "/v1/saved-lists",
            json={"name": "Locked", "items": [{"sku": world.skus[1], "quantity": 1}]},
        ),
        201,
    )
    ok(rep.post("cart", "/v1/cart/lock"))
    refused = buyer.post("cart", f"/v1/saved-lists/{created['id']}/add-to-cart")
    assert refused.status_code == 409 and rep_user["name"] in refused.json()["detail"]
    # The lock is on the cart, not on the lists: the buyer still edits the list.
    ok(
        buyer.post(
            "cart",
            f"/v1/saved-lists/{created['id']}/items",
            json={"sku": world.skus[0], "quantity": 1},
        )
    )
    cart = ok(rep.post("cart", f"/v1/saved-lists/{created['id']}/add-to-cart"))
    assert {i["sku"] for i in cart["items"]} == {world.skus[0], world.skus[1]}
