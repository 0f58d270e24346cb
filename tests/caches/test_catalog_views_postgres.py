"""Catalog's cached prices on PostgreSQL with two catalog processes, as issue 15 runs them: the
pre-built statements price the same as on SQLite, and a write through either process is what
the other answers next."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devtools.stacks import connect_bus, stack_on_postgres, start_replica
from libs.common.quotes import request_quote
from onbehalf.stack import ServiceProcess, Stack
from tests.catalog.helpers import create_customer, create_product, create_promotion
from tests.conftest import ADMIN_EMAIL
from tests.support import Api, ok, unique

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg_catalog(
    tmp_path_factory: pytest.TempPathFactory, admin_password: str
) -> Iterator[tuple[Stack, ServiceProcess]]:
    """A stack whose catalog is on PostgreSQL, and a second catalog process on that database."""
    with stack_on_postgres(
        tmp_path_factory.mktemp("pg-catalog"),
        services=("catalog",),
        admin_email=ADMIN_EMAIL,
        admin_password=admin_password,
    ) as stack:
        yield stack, start_replica(stack, "catalog")


def listed(api: Api, url: str, q: str) -> dict[str, dict[str, Any]]:
    body = ok(httpx.get(f"{url}/v1/products", params={"q": q}, headers=api.headers(), timeout=10))
    return {item["sku"]: item for item in body["items"]}


def set_price(admin: Api, url: str, *, org_id: str, sku: str, price: str) -> None:
    """A customer price set through the catalog process at `url`."""
    path = f"{url}/v1/customers/{org_id}/prices/{sku}"
    ok(httpx.put(path, json={"price": price}, headers=admin.headers(), timeout=10))


async def test_two_catalog_processes_on_postgresql_answer_each_others_writes(
    pg_catalog: tuple[Stack, ServiceProcess], http: httpx.Client, admin_password: str
) -> None:
    stack, replica = pg_catalog
    admin = Api(stack=stack, client=http).login(ADMIN_EMAIL, admin_password)
    customer = create_customer(admin, "PG Views")
    buyer = admin.login(customer.buyer["email"])
    token = unique("pg_50%")  # "%" and "_" are characters in a search, not wildcards
    plain = create_product(admin, price="10.00", name=f"{token} plain")
    promoted = create_product(admin, price="40.00", name=f"{token} promoted")
    create_product(admin, price="1.00", name=token.replace("%", "x").replace("_", "y"))
    ok(admin.put("catalog", f"/v1/customers/{customer.id}/prices/{plain}", json={"price": "8.00"}))
    create_promotion(admin, kind="percentage", value="25", org_ids=[customer.id], skus=[promoted])
    ok(
        admin.put(
            "catalog", f"/v1/customers/{customer.id}/assortment", json={"skus": [plain, promoted]}
        )
    )
    first, second = stack.url("catalog"), replica.url
    for url in (first, second, first, second):  # built, then cached, in each process
        seen = listed(buyer, url, token)
        assert {sku: item["price"] for sku, item in seen.items()} == {
            plain: "8.00",
            promoted: "30.00",
        }
    nc = await connect_bus(stack, "cart")
    try:
        quote = await request_quote(nc, org_id=customer.id, skus=[plain, promoted, "NO-SUCH"])
        assert {sku: str(line.unit_price) for sku, line in quote.lines.items()} == {
            plain: "8.00",
            promoted: "30.00",
        }
        assert quote.unavailable == ["NO-SUCH"]

        # A write through the second process; the first answers it next, and the other way.
        set_price(admin, second, org_id=customer.id, sku=plain, price="7.00")
        assert listed(buyer, first, token)[plain]["price"] == "7.00"
        set_price(admin, first, org_id=customer.id, sku=plain, price="6.00")
        assert listed(buyer, second, token)[plain]["price"] == "6.00"
        # Quotes go to either process (a queue group): both must have seen it.
        for _ in range(4):
            quote = await request_quote(nc, org_id=customer.id, skus=[plain])
            assert str(quote.lines[plain].unit_price) == "6.00"
    finally:
        await nc.drain()
