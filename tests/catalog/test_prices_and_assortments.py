"""Assortments (empty means everything) and customer prices, with their bad input refused."""

from __future__ import annotations

from typing import Any

from tests.catalog.helpers import create_customer, create_product, products
from tests.support import Api, audit_events, ok, wait_until


def test_an_empty_assortment_means_the_whole_catalog(admin: Api) -> None:
    customer = create_customer(admin, "Assorted")
    first, second = create_product(admin, price="1.00"), create_product(admin, price="2.00")
    buyer = admin.login(customer.buyer["email"])
    assert {first, second} <= set(products(buyer))
    ok(admin.put("catalog", f"/v1/customers/{customer.id}/assortment", json={"skus": [second]}))
    assert set(products(buyer)) == {second}
    ok(admin.put("catalog", f"/v1/customers/{customer.id}/assortment", json={"skus": []}))
    assert {first, second} <= set(products(buyer))


def test_a_customer_price_replaces_the_base_price_until_removed(admin: Api) -> None:
    customer = create_customer(admin, "Priced")
    sku = create_product(admin, price="12.00", currency="CHF")
    buyer = admin.login(customer.buyer["email"])
    path = f"/v1/customers/{customer.id}/prices/{sku}"
    assert ok(admin.put("catalog", path, json={"price": "10.90"})) == {
        "org_id": customer.id,
        "sku": sku,
        "price": "10.90",
        "currency": "CHF",
    }
    seen = products(buyer, q=sku)[sku]
    assert (seen["price"], seen["currency"], seen["base_price"], seen["customer_price"]) == (
        "10.90",
        "CHF",
        "12.00",
        True,
    )
    assert admin.delete("catalog", path).status_code == 204
    seen = products(buyer, q=sku)[sku]
    assert (seen["price"], seen["customer_price"]) == ("12.00", False)
    assert admin.delete("catalog", path).status_code == 404

    def audited() -> list[dict[str, Any]]:
        return [
            e
            for e in audit_events(admin, subject_org_id=customer.id)
            if e["type"].startswith("com.onbehalf.catalog.customer_price.")
        ]

    def both() -> list[dict[str, Any]] | None:
        found = audited()
        return found if len(found) == 2 else None

    events = wait_until(both, what="price changes audited")
    assert sorted(e["type"] for e in events) == [
        "com.onbehalf.catalog.customer_price.removed",
        "com.onbehalf.catalog.customer_price.set",
    ]


def test_bad_price_and_assortment_input_is_refused(admin: Api) -> None:
    customer = create_customer(admin, "Refused")
    sku = create_product(admin, price="5.00")
    prices = f"/v1/customers/{customer.id}/prices"
    cases: list[tuple[str, str, Any, int]] = [
        ("PUT", f"{prices}/NO-SUCH-SKU", {"price": "1.00"}, 404),
        ("PUT", f"{prices}/{sku}", {"price": "0"}, 422),
        ("PUT", f"{prices}/{sku}", {"price": "-1.00"}, 422),
        ("PUT", f"{prices}/{sku}", {"price": "1.001"}, 422),
        ("PUT", f"{prices}/{sku}", {"price": "1.00", "currency": "USD"}, 422),
        ("PUT", f"/v1/customers/{customer.id}/assortment", {"skus": [sku, "NO-SUCH"]}, 422),
        ("PUT", f"/v1/customers/{customer.id}/assortment", {"skus": sku}, 422),
    ]
    for method, path, body, status in cases:
        response = admin.request(method, "catalog", path, json=body)
        assert response.status_code == status, (path, body, response.text)
        assert response.json()["detail"]
    seen = products(admin.login(customer.buyer["email"]), q=sku)
    assert (seen[sku]["price"], seen[sku]["customer_price"]) == ("5.00", False)
