"""Promotions and customer groups: what the list shows is what cart and orders charge."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.catalog.helpers import (
    act_as,
    at,
    create_customer,
    create_product,
    create_promotion,
    products,
    put_in_groups,
)
from tests.support import Api, audit_events, ok, unique, wait_until

DAY = timedelta(days=1)


def test_the_best_promotion_is_shown_and_charged_by_cart_and_orders(admin: Api) -> None:
    customer = create_customer(admin, "Promo Customer")
    group = unique("key-accounts")
    put_in_groups(admin, customer, group)
    cheap, dear = create_product(admin, price="20.00"), create_product(admin, price="100.00")
    ok(
        admin.put(
            "catalog", f"/v1/customers/{customer.id}/assortment", json={"skus": [cheap, dear]}
        )
    )
    ok(admin.put("catalog", f"/v1/customers/{customer.id}/prices/{dear}", json={"price": "80.00"}))
    percent = create_promotion(
        admin, kind="percentage", value="10", org_ids=[customer.id], valid_to=at(DAY)
    )
    fixed = create_promotion(
        admin, kind="fixed", value="5.00", currency="EUR", groups=[group], skus=[cheap]
    )

    buyer = admin.login(customer.buyer["email"])
    seen = products(buyer)
    # On 20.00, 5.00 off beats 10 %; on the customer's 80.00, 10 % (8.00) is the better one.
    assert seen[cheap]["price"] == "15.00"
    assert seen[cheap]["price_before_promotion"] == "20.00"
    assert seen[cheap]["promotion"] == {
        "id": fixed["id"],
        "name": fixed["name"],
        "kind": "fixed",
        "value": "5.00",
        "currency": "EUR",
        "valid_to": None,
    }
    assert seen[dear]["price"] == "72.00"
    assert (seen[dear]["price_before_promotion"], seen[dear]["base_price"]) == ("80.00", "100.00")
    assert seen[dear]["customer_price"] is True
    assert seen[dear]["promotion"]["id"] == percent["id"]
    assert seen[dear]["promotion"]["valid_to"] == percent["valid_to"]

    acting = act_as(admin, customer.rep, customer, "full")
    ok(acting.post("cart", "/v1/cart/items", json={"sku": cheap, "quantity": 2}))
    cart = ok(acting.post("cart", "/v1/cart/items", json={"sku": dear, "quantity": 1}))
    assert {i["sku"]: i["unit_price"] for i in cart["items"]} == {cheap: "15.00", dear: "72.00"}
    order = ok(acting.post("orders", "/v1/orders", headers={"Idempotency-Key": unique("k")}), 201)
    assert {i["sku"]: i["unit_price"] for i in order["items"]} == {cheap: "15.00", dear: "72.00"}
    assert order["total"] == "102.00"


def test_a_fixed_discount_larger_than_the_price_makes_it_free_not_negative(admin: Api) -> None:
    customer = create_customer(admin, "Free Customer")
    sku = create_product(admin, price="3.00")
    create_promotion(admin, kind="fixed", value="10.00", currency="EUR", org_ids=[customer.id])
    create_promotion(admin, kind="fixed", value="1.00", currency="USD", org_ids=[customer.id])
    seen = products(admin.login(customer.buyer["email"]), q=sku)[sku]
    assert (seen["price"], seen["promotion"]["value"]) == ("0.00", "10.00")


def test_groups_decide_who_gets_a_group_promotion(admin: Api) -> None:
    member, outsider = create_customer(admin, "Member"), create_customer(admin, "Outsider")
    group = unique("dach.wholesale")
    sku = create_product(admin, price="50.00")
    promotion = create_promotion(admin, kind="percentage", value="50", groups=[group], skus=[sku])
    other = unique("other")
    put_in_groups(admin, member, other, group, other)
    groups = ok(admin.get("catalog", f"/v1/customers/{member.id}/groups"))["groups"]
    assert groups == sorted([group, other])
    assert products(admin.login(member.buyer["email"]), q=sku)[sku]["price"] == "25.00"
    outsider_view = products(admin.login(outsider.buyer["email"]), q=sku)[sku]
    assert (outsider_view["price"], outsider_view["promotion"]) == ("50.00", None)

    listed = ok(admin.get("catalog", "/v1/promotions", params={"group": group}))["items"]
    assert [p["id"] for p in listed] == [promotion["id"]]
    assert listed[0]["groups"] == [group] and listed[0]["status"] == "active"

    put_in_groups(admin, member)  # out of every group
    assert ok(admin.get("catalog", f"/v1/customers/{member.id}/groups"))["groups"] == []
    assert products(admin.login(member.buyer["email"]), q=sku)[sku]["promotion"] is None


def test_windows_and_ending(admin: Api) -> None:
    customer = create_customer(admin, "Window Customer")
    sku = create_product(admin, price="10.00")
    scheduled = create_promotion(
        admin, kind="percentage", value="30", org_ids=[customer.id], valid_from=at(DAY)
    )
    running = create_promotion(admin, kind="percentage", value="20", org_ids=[customer.id])
    assert (scheduled["status"], running["status"]) == ("scheduled", "active")
    buyer = admin.login(customer.buyer["email"])
    assert products(buyer, q=sku)[sku]["promotion"]["id"] == running["id"]

    by_status = {
        status: {
            p["id"]
            for p in ok(
                admin.get(
                    "catalog", "/v1/promotions", params={"status": status, "org_id": customer.id}
                )
            )["items"]
        }
        for status in ("scheduled", "active", "ended")
    }
    assert by_status == {"scheduled": {scheduled["id"]}, "active": {running["id"]}, "ended": set()}

    ended = ok(admin.post("catalog", f"/v1/promotions/{running['id']}/end"))
    assert ended["status"] == "ended" and ended["ended_at"] and ended["valid_to"]
    assert products(buyer, q=sku)[sku]["promotion"] is None
    assert products(buyer, q=sku)[sku]["price"] == "10.00"
    again = admin.post("catalog", f"/v1/promotions/{running['id']}/end")
    assert again.status_code == 409 and "already ended" in again.json()["detail"]

    # Ending a scheduled promotion means it never runs.
    never = ok(admin.post("catalog", f"/v1/promotions/{scheduled['id']}/end"))
    assert never["status"] == "ended" and never["valid_to"] == never["valid_from"]
    assert ok(admin.get("catalog", f"/v1/promotions/{scheduled['id']}")) == never
    assert admin.get("catalog", "/v1/promotions/no-such-id").status_code == 404
    assert admin.post("catalog", "/v1/promotions/no-such-id/end").status_code == 404


def test_bad_promotion_input_is_refused_and_nothing_is_written(admin: Api) -> None:
    customer = create_customer(admin, "Bad Input Customer")
    sku = create_product(admin, price="10.00")
    target = {"org_ids": [customer.id]}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"kind": "percentage", "value": "101", **target}, "at most 100"),
        ({"kind": "percentage", "value": "0", **target}, "value"),
        ({"kind": "percentage", "value": "-5", **target}, "value"),
        ({"kind": "percentage", "value": "5.555", **target}, "value"),
        ({"kind": "percentage", "value": "ten", **target}, "value"),
        ({"kind": "fixed", "value": "5.00", **target}, "currency"),
        ({"kind": "percentage", "value": "5", "currency": "EUR", **target}, "no currency"),
        ({"kind": "fixed", "value": "5.00", "currency": "euro", **target}, "currency"),
        ({"kind": "bogo", "value": "5", **target}, "kind"),
        ({"kind": "percentage", "value": "5"}, "at least one target"),
        (
            {
                "kind": "percentage",
                "value": "5",
                "valid_from": at(2 * DAY),
                "valid_to": at(DAY),
                **target,
            },
            "valid_to must be after valid_from",
        ),
        ({"kind": "percentage", "value": "5", "valid_to": at(-DAY), **target}, "in the past"),
        (
            {"kind": "percentage", "value": "5", "valid_to": "2031-01-01T00:00:00", **target},
            "timezone",
        ),
        ({"kind": "percentage", "value": "5", "skus": ["NO-SUCH-SKU"], **target}, "unknown SKU"),
        ({"kind": "percentage", "value": "5", "groups": ["not a group!"]}, "groups"),
        ({"kind": "percentage", "value": "5", "price": "1.00", **target}, "price"),
    ]
    for body, words in cases:
        response = admin.post("catalog", "/v1/promotions", json={"name": "Bad", **body})
        assert response.status_code == 422, (body, response.text)
        assert words in response.json()["detail"], (body, response.json())

    buyer = admin.login(customer.buyer["email"])
    refused = buyer.post(
        "catalog",
        "/v1/promotions",
        json={"name": "Mine", "kind": "percentage", "value": "99", **target},
    )
    assert refused.status_code == 403
    assert refused.json()["reason"] == "customer users cannot administer the platform"
    acting = act_as(admin, customer.rep, customer, "full")
    refused = acting.put("catalog", f"/v1/customers/{customer.id}/groups", json={"groups": ["vip"]})
    assert refused.status_code == 403
    assert refused.json()["reason"] == (
        "administration is never allowed while acting on behalf of a customer"
    )
    bad_groups = admin.put(
        "catalog", f"/v1/customers/{customer.id}/groups", json={"groups": ["ok", "not ok"]}
    )
    assert bad_groups.status_code == 422

    assert ok(admin.get("catalog", "/v1/promotions", params={"org_id": customer.id}))["items"] == []
    assert ok(admin.get("catalog", f"/v1/customers/{customer.id}/groups"))["groups"] == []
    assert products(buyer, q=sku)[sku]["promotion"] is None


def test_promotion_changes_are_audited(admin: Api) -> None:
    customer = create_customer(admin, "Audited Customer")
    group = unique("audited")
    put_in_groups(admin, customer, group)
    promotion = create_promotion(admin, kind="percentage", value="15", groups=[group])
    ok(admin.post("catalog", f"/v1/promotions/{promotion['id']}/end"))
    admin_id = ok(admin.get("identity", "/v1/me"))["id"]

    def recorded() -> list[dict[str, Any]] | None:
        found = [
            e
            for e in audit_events(admin, actor_id=admin_id)
            if e["type"].startswith("com.onbehalf.catalog.promotion.")
            and e["data"].get("id") == promotion["id"]
        ]
        return found if len(found) == 2 else None

    created, ended = sorted(
        wait_until(recorded, what="promotion created and ended audited"), key=lambda e: e["type"]
    )
    assert created["type"] == "com.onbehalf.catalog.promotion.created" and created["data"][
        "groups"
    ] == [group]
    assert ended["type"] == "com.onbehalf.catalog.promotion.ended"
    groups_set = wait_until(
        lambda: audit_events(
            admin, subject_org_id=customer.id, type="com.onbehalf.catalog.customer_groups.set"
        ),
        what="group membership audited",
    )
    assert groups_set[0]["data"]["groups"] == [group]
    assert groups_set[0]["actor"]["id"] == admin_id
