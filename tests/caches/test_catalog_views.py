"""Catalog's cached prices never outlive what they were built from: after each kind of write
that changes a price or what a customer may buy, the very next product list and price quote
show it; a promotion starts and ends at its moment without any write; and a write through one
catalog process is what another one (same database) answers next."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from nats.aio.client import Client as NATS

from devtools.stacks import connect_bus, start_replica
from libs.common.quotes import request_quote
from libs.contracts.catalog import PriceQuote
from onbehalf.stack import ServiceProcess, Stack
from tests.catalog.helpers import (
    Customer,
    create_customer,
    create_product,
    create_promotion,
    products,
    put_in_groups,
)
from tests.support import Api, ok, unique

Seen = tuple[dict[str, dict[str, Any]], PriceQuote]


@pytest.fixture
async def bus(stack: Stack) -> AsyncIterator[NATS]:
    nc = await connect_bus(stack, "cart")  # cart is one of the two who ask for quotes
    try:
        yield nc
    finally:
        await nc.drain()


async def seen(nc: NATS, buyer: Api, customer: Customer, *, q: str, skus: list[str]) -> Seen:
    """The buyer's product list (searched for `q`) and a quote for `skus`, asked the way the
    console and cart ask: the same question twice is a cached answer the second time."""
    return products(buyer, q=q), await request_quote(nc, org_id=customer.id, skus=skus)


def prices(view: Seen, sku: str) -> tuple[str | None, str | None]:
    """What the list and the quote say `sku` costs (None: not there)."""
    listed, quote = view
    line = quote.lines.get(sku)
    return (
        listed[sku]["price"] if sku in listed else None,
        str(line.unit_price) if line else None,
    )


async def test_a_new_product_is_listed_and_quoted_at_once(admin: Api, bus: NATS) -> None:
    customer = create_customer(admin, "Views New")
    buyer = admin.login(customer.buyer["email"])
    token = unique("new")
    sku = f"{token}-SKU"
    # Asked (and cached) before it exists: not listed, unavailable.
    before = await seen(bus, buyer, customer, q=token, skus=[sku])
    assert prices(before, sku) == (None, None)
    assert before[1].unavailable == [sku]
    body = {"sku": sku, "name": f"Product {sku}", "price": "12.34", "currency": "EUR"}
    ok(admin.post("catalog", "/v1/products", json=body), 201)
    assert prices(await seen(bus, buyer, customer, q=token, skus=[sku]), sku) == (
        "12.34",
        "12.34",
    )


async def test_a_customer_price_set_and_removed_is_listed_and_quoted_at_once(
    admin: Api, bus: NATS
) -> None:
    customer = create_customer(admin, "Views Price")
    buyer = admin.login(customer.buyer["email"])
    sku = create_product(admin, price="10.00")
    view = await seen(bus, buyer, customer, q=sku, skus=[sku])
    assert prices(view, sku) == ("10.00", "10.00")
    ok(admin.put("catalog", f"/v1/customers/{customer.id}/prices/{sku}", json={"price": "7.00"}))
    assert prices(await seen(bus, buyer, customer, q=sku, skus=[sku]), sku) == ("7.00", "7.00")
    ok(admin.delete("catalog", f"/v1/customers/{customer.id}/prices/{sku}"), 204)
    assert prices(await seen(bus, buyer, customer, q=sku, skus=[sku]), sku) == ("10.00", "10.00")


async def test_an_assortment_change_is_listed_and_quoted_at_once(admin: Api, bus: NATS) -> None:
    customer = create_customer(admin, "Views Assortment")
    buyer = admin.login(customer.buyer["email"])
    token = unique("assorted")
    kept = create_product(admin, price="3.00", name=f"{token} kept")
    dropped = create_product(admin, price="4.00", name=f"{token} dropped")
    both = [kept, dropped]
    view = await seen(bus, buyer, customer, q=token, skus=both)
    assert (prices(view, kept), prices(view, dropped)) == (("3.00", "3.00"), ("4.00", "4.00"))
    ok(admin.put("catalog", f"/v1/customers/{customer.id}/assortment", json={"skus": [kept]}))
    view = await seen(bus, buyer, customer, q=token, skus=both)
    assert set(view[0]) == {kept} and set(view[1].lines) == {kept}
    assert view[1].unavailable == [dropped]
    ok(admin.put("catalog", f"/v1/customers/{customer.id}/assortment", json={"skus": both}))
    view = await seen(bus, buyer, customer, q=token, skus=both)
    assert set(view[0]) == set(view[1].lines) == set(both)


async def test_a_promotion_started_and_ended_is_listed_and_quoted_at_once(
    admin: Api, bus: NATS
) -> None:
    customer = create_customer(admin, "Views Promo")
    buyer = admin.login(customer.buyer["email"])
    sku = create_product(admin, price="40.00")
    assert prices(await seen(bus, buyer, customer, q=sku, skus=[sku]), sku) == ("40.00", "40.00")
    promotion = create_promotion(admin, kind="percentage", value="25", org_ids=[customer.id])
    view = await seen(bus, buyer, customer, q=sku, skus=[sku])
    assert prices(view, sku) == ("30.00", "30.00")
    assert view[1].lines[sku].promotion_id == promotion["id"]
    ok(admin.post("catalog", f"/v1/promotions/{promotion['id']}/end"))
    view = await seen(bus, buyer, customer, q=sku, skus=[sku])
    assert prices(view, sku) == ("40.00", "40.00")
    assert view[1].lines[sku].promotion_id is None


async def test_joining_and_leaving_a_group_is_listed_and_quoted_at_once(
    admin: Api, bus: NATS
) -> None:
    customer = create_customer(admin, "Views Group")
    buyer = admin.login(customer.buyer["email"])
    group = unique("views-group")
    sku = create_product(admin, price="20.00")
    create_promotion(admin, kind="fixed", value="5.00", currency="EUR", groups=[group])
    assert prices(await seen(bus, buyer, customer, q=sku, skus=[sku]), sku) == ("20.00", "20.00")
    put_in_groups(admin, customer, group)
    assert prices(await seen(bus, buyer, customer, q=sku, skus=[sku]), sku) == ("15.00", "15.00")
    put_in_groups(admin, customer)
    assert prices(await seen(bus, buyer, customer, q=sku, skus=[sku]), sku) == ("20.00", "20.00")


async def test_a_customer_product_number_is_listed_and_quoted_at_once(
    admin: Api, bus: NATS
) -> None:
    customer = create_customer(admin, "Views Number")
    buyer = admin.login(customer.buyer["email"])
    sku = create_product(admin, price="2.00")
    number = unique("ERP")

    def numbers(view: Seen) -> tuple[str | None, str | None]:
        listed, quote = view
        return listed[sku]["customer_product_number"], quote.lines[sku].customer_product_number

    assert numbers(await seen(bus, buyer, customer, q=sku, skus=[sku])) == (None, None)
    ok(buyer.put("catalog", f"/v1/products/{sku}/customer-number", json={"number": number}))
    assert numbers(await seen(bus, buyer, customer, q=sku, skus=[sku])) == (number, number)
    # Found by the number, too, which the cached search for it did not find before.
    assert sku in products(buyer, q=number.lower())
    ok(buyer.delete("catalog", f"/v1/products/{sku}/customer-number"), 204)
    assert numbers(await seen(bus, buyer, customer, q=sku, skus=[sku])) == (None, None)
    assert sku not in products(buyer, q=number.lower())


async def test_promotions_start_and_end_at_their_moment_without_a_write(
    admin: Api, bus: NATS
) -> None:
    customer = create_customer(admin, "Views Clock")
    buyer = admin.login(customer.buyer["email"])
    token = unique("clock")
    starting = create_product(admin, price="10.00", name=f"{token} starting")
    ending = create_product(admin, price="10.00", name=f"{token} ending")
    both = [starting, ending]
    starts = datetime.now(UTC) + timedelta(seconds=3)
    moment = starts.isoformat()
    create_promotion(
        admin,
        kind="percentage",
        value="50",
        org_ids=[customer.id],
        skus=[starting],
        valid_from=moment,
    )
    create_promotion(
        admin, kind="percentage", value="50", org_ids=[customer.id], skus=[ending], valid_to=moment
    )
    view = await seen(bus, buyer, customer, q=token, skus=both)
    if datetime.now(UTC) < starts:  # both asked before the moment (a slow machine may not)
        assert (prices(view, starting), prices(view, ending)) == (
            ("10.00", "10.00"),
            ("5.00", "5.00"),
        )
    # No write from here on: only the clock moves the cached prices.
    expected = [("5.00", "5.00"), ("10.00", "10.00")]
    deadline = time.monotonic() + 20.0
    while True:
        view = await seen(bus, buyer, customer, q=token, skus=both)
        now_seen = [prices(view, starting), prices(view, ending)]
        if now_seen == expected:
            break
        assert time.monotonic() < deadline, f"the prices did not change at {moment}: {now_seen}"
        await asyncio.sleep(0.05)  # poll interval of the condition above


@pytest.fixture
def catalog_replica(stack: Stack) -> Iterator[ServiceProcess]:
    """A second catalog process on the stack's catalog database."""
    replica = start_replica(stack, "catalog")
    try:
        yield replica
    finally:
        replica.stop()
        for key in [k for k, v in stack.replicas.items() if v is replica]:
            del stack.replicas[key]


def test_a_write_through_one_catalog_process_is_what_another_answers_next(
    admin: Api, catalog_replica: ServiceProcess
) -> None:
    customer = create_customer(admin, "Views Replica")
    buyer = admin.login(customer.buyer["email"])
    sku = create_product(admin, price="9.00")

    def replica_price() -> str:
        response = httpx.get(
            f"{catalog_replica.url}/v1/products",
            params={"q": sku},
            headers=buyer.headers(),
            timeout=10.0,
        )
        return str(ok(response)["items"][0]["price"])

    assert replica_price() == replica_price() == "9.00"  # cached there
    ok(admin.put("catalog", f"/v1/customers/{customer.id}/prices/{sku}", json={"price": "6.50"}))
    assert replica_price() == "6.50"
    # And the other way round: the replica's write, the first process's next answer.
    assert products(buyer, q=sku)[sku]["price"] == "6.50"
    replica_admin = httpx.put(
        f"{catalog_replica.url}/v1/customers/{customer.id}/prices/{sku}",
        json={"price": "6.00"},
        headers=admin.headers(),
        timeout=10.0,
    )
    ok(replica_admin)
    assert products(buyer, q=sku)[sku]["price"] == "6.00"
