"""Customer product numbers: who sets them, how search finds them, and every change audited."""

from __future__ import annotations

from typing import Any

from tests.catalog.helpers import (
    Customer,
    act_as,
    create_customer,
    create_product,
    products,
)
from tests.support import Api, audit_events, ok, security_reviewer, unique, wait_until


def _number_path(sku: str) -> str:
    return f"/v1/products/{sku}/customer-number"


def _audited(
    reviewer: Api, customer: Customer, event_type: str, count: int
) -> list[dict[str, Any]]:
    def found() -> list[dict[str, Any]] | None:
        events = audit_events(reviewer, subject_org_id=customer.id, type=event_type)
        return events if len(events) >= count else None

    return wait_until(found, what=f"{count} x {event_type} audited")


def test_buyer_admin_and_full_acting_session_set_numbers_and_search_finds_them(
    admin: Api,
) -> None:
    customer, other = create_customer(admin, "Numbers"), create_customer(admin, "Other")
    bolt = create_product(admin, price="1.00", name="Hex bolt M8")
    nut = create_product(admin, price="0.20", name="Hex nut M8")
    buyer = admin.login(customer.buyer["email"])

    assert ok(buyer.put("catalog", _number_path(bolt), json={"number": "  MAT-4711 "})) == {
        "org_id": customer.id,
        "sku": bolt,
        "number": "MAT-4711",
    }
    acting = act_as(admin, customer.rep, customer, "full")
    ok(acting.put("catalog", _number_path(nut), json={"number": "mat-0815"}))

    seen = products(buyer)
    assert (seen[bolt]["customer_product_number"], seen[nut]["customer_product_number"]) == (
        "MAT-4711",
        "mat-0815",
    )
    # Search: the customer's own number (any case, any part), the SKU, the name.
    assert set(products(buyer, q="mat-4711")) == {bolt}
    assert set(products(buyer, q="MAT-")) == {bolt, nut}
    assert set(products(buyer, q=bolt.lower())) == {bolt}
    assert {bolt, nut} <= set(products(buyer, q="hex"))
    assert products(acting, q="0815") == products(buyer, q="0815") != {}
    # Another customer sees neither number, and cannot find products by them.
    other_buyer = admin.login(other.buyer["email"])
    assert products(other_buyer, q=bolt)[bolt]["customer_product_number"] is None
    assert products(other_buyer, q="MAT-4711") == {}

    # Renaming and removing; the number is free again for another product.
    ok(buyer.put("catalog", _number_path(bolt), json={"number": "MAT-4712"}))
    assert buyer.delete("catalog", _number_path(nut)).status_code == 204
    assert products(buyer, q=nut)[nut]["customer_product_number"] is None
    ok(buyer.put("catalog", _number_path(nut), json={"number": "MAT-4711"}))
    assert products(buyer, q="MAT-4711").keys() == {nut}

    reviewer = security_reviewer(admin)
    set_events = _audited(reviewer, customer, "com.onbehalf.catalog.customer_product_number.set", 4)
    by_number = {e["data"]["number"]: e for e in set_events}
    assert by_number["MAT-4711"]["data"]["sku"] in {bolt, nut}
    acting_event = by_number["mat-0815"]
    assert acting_event["actor"]["id"] == customer.rep["id"]
    assert acting_event["subject"]["org_id"] == customer.id
    assert acting_event["acting_session_id"]
    renamed = by_number["MAT-4712"]
    assert renamed["data"]["previous"] == "MAT-4711"
    assert renamed["actor"]["id"] == customer.buyer["id"]
    assert renamed["subject"] == {"org_id": customer.id, "user_id": customer.buyer["id"]}
    (removed,) = _audited(
        reviewer, customer, "com.onbehalf.catalog.customer_product_number.removed", 1
    )
    assert removed["data"] == {"org_id": customer.id, "sku": nut, "previous": "mat-0815"}


def test_viewers_view_sessions_and_plain_staff_are_refused_with_the_policy_reason(
    admin: Api,
) -> None:
    customer = create_customer(admin, "Refusals")
    sku = create_product(admin, price="5.00")
    viewer = admin.login(customer.viewer["email"])
    viewing = act_as(admin, customer.rep, customer, "view")
    rep = admin.login(customer.rep["email"])
    refusals = [
        (viewer, "a viewer cannot change customer product numbers"),
        (viewing, "a view-mode acting session cannot change customer product numbers"),
        (rep, "staff reach a customer's catalog, cart and orders only by acting as the customer"),
        (admin, "staff reach a customer's catalog, cart and orders only by acting as the customer"),
    ]
    for api, reason in refusals:
        for response in (
            api.put("catalog", _number_path(sku), json={"number": "N-1"}),
            api.delete("catalog", _number_path(sku)),
        ):
            assert response.status_code == 403, response.text
            assert response.json()["reason"] == reason
    buyer = admin.login(customer.buyer["email"])
    assert products(buyer, q=sku)[sku]["customer_product_number"] is None


def test_bad_number_input_is_refused_and_nothing_is_written(admin: Api) -> None:
    customer = create_customer(admin, "Bad Numbers")
    inside, outside = create_product(admin, price="2.00"), create_product(admin, price="3.00")
    ok(admin.put("catalog", f"/v1/customers/{customer.id}/assortment", json={"skus": [inside]}))
    buyer = admin.login(customer.buyer["email"])
    ok(buyer.put("catalog", _number_path(inside), json={"number": "TAKEN"}))
    spare = create_product(admin, price="4.00")
    ok(
        admin.put(
            "catalog", f"/v1/customers/{customer.id}/assortment", json={"skus": [inside, spare]}
        )
    )

    cases: list[tuple[str, Any, int, str]] = [
        ("NO-SUCH-SKU", {"number": "X"}, 404, "no product"),
        (outside, {"number": "X"}, 404, "no product"),
        (spare, {"number": "TAKEN"}, 409, "already"),
        (spare, {"number": ""}, 422, "number"),
        (spare, {"number": "   "}, 422, "number"),
        (spare, {"number": "x" * 65}, 422, "number"),
        (spare, {"number": "tab\there"}, 422, "number"),
        # A control character at an end is refused as the OpenAPI's pattern says, not trimmed.
        (spare, {"number": "\r)q"}, 422, "number"),
        (spare, {"number": "X\n"}, 422, "number"),
        (spare, {"number": 4711}, 422, "number"),
        (spare, {}, 422, "number"),
        (spare, {"number": "X", "sku": "other"}, 422, "sku"),
        ("bad sku!", {"number": "X"}, 422, "sku"),
    ]
    for sku, body, status, words in cases:
        response = buyer.put("catalog", _number_path(sku), json=body)
        assert response.status_code == status, (sku, body, response.text)
        assert words in response.json()["detail"], (sku, body, response.json())
    malformed = buyer.put(
        "catalog",
        _number_path(spare),
        content=b'{"number": ',
        headers={"Content-Type": "application/json"},
    )
    assert malformed.status_code == 422
    missing = buyer.delete("catalog", _number_path(spare))
    assert missing.status_code == 404 and "no own number" in missing.json()["detail"]

    # Setting the same number again is no change: no event.
    ok(buyer.put("catalog", _number_path(inside), json={"number": "TAKEN"}))
    numbers = {sku: p["customer_product_number"] for sku, p in products(buyer).items()}
    assert numbers == {inside: "TAKEN", spare: None}
    reviewer = security_reviewer(admin)
    # A sentinel change: once it is audited, anything written before it would be too.
    ok(buyer.put("catalog", _number_path(spare), json={"number": unique("S")}))
    events = _audited(reviewer, customer, "com.onbehalf.catalog.customer_product_number.set", 2)
    assert sorted(e["data"]["sku"] for e in events) == sorted([inside, spare])
