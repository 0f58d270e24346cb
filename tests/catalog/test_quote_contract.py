"""The catalog.quote contract over real NATS: the same prices, promotions and numbers as the list."""

from __future__ import annotations

import json

from devtools.stacks import connect_bus
from libs.common.quotes import QUOTE_SUBJECT, request_quote
from onbehalf.stack import Stack
from tests.catalog.helpers import create_customer, create_product, create_promotion, products
from tests.support import Api, ok


async def test_a_quote_carries_what_the_product_list_shows(stack: Stack, admin: Api) -> None:
    customer = create_customer(admin, "Quoted")
    promoted, plain = create_product(admin, price="40.00"), create_product(admin, price="9.99")
    elsewhere = create_product(admin, price="1.00")
    ok(
        admin.put(
            "catalog", f"/v1/customers/{customer.id}/assortment", json={"skus": [promoted, plain]}
        )
    )
    ok(admin.put("catalog", f"/v1/customers/{customer.id}/prices/{plain}", json={"price": "8.00"}))
    promotion = create_promotion(
        admin, kind="percentage", value="25", org_ids=[customer.id], skus=[promoted]
    )
    buyer = admin.login(customer.buyer["email"])
    ok(buyer.put("catalog", f"/v1/products/{promoted}/customer-number", json={"number": "Q-1"}))
    listed = products(buyer)

    nc = await connect_bus(stack, "cart")  # cart is one of the two who ask for quotes
    try:
        quote = await request_quote(
            nc, org_id=customer.id, skus=[promoted, plain, elsewhere, "NO-SUCH-SKU"]
        )
        malformed = await nc.request(QUOTE_SUBJECT, b'{"skus": "nope"}', timeout=2)
    finally:
        await nc.drain()

    assert quote.org_id == customer.id and quote.quoted_at is not None
    assert quote.unavailable == sorted([elsewhere, "NO-SUCH-SKU"])
    assert set(quote.lines) == {promoted, plain}
    for sku, line in quote.lines.items():
        shown = listed[sku]
        assert str(line.unit_price) == shown["price"]
        assert str(line.price_before_promotion) == shown["price_before_promotion"]
        assert str(line.base_price) == shown["base_price"]
        assert line.currency == shown["currency"] and line.name == shown["name"]
        assert line.customer_product_number == shown["customer_product_number"]
    assert str(quote.lines[promoted].unit_price) == "30.00"
    assert quote.lines[promoted].promotion_id == promotion["id"]
    assert quote.lines[promoted].promotion_name == promotion["name"]
    assert quote.lines[plain].promotion_id is None
    assert str(quote.lines[plain].unit_price) == "8.00"
    assert "invalid quote request" in json.loads(malformed.data)["error"]
