"""Cursor paging of products, promotions and orders: every item exactly once, bad cursors 422."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.support import Api, World, ok, unique


def _walk(api: Api, service: str, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every page of a list, following `next_cursor` until it is null."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(1000):
        after = {"cursor": cursor} if cursor is not None else {}
        page = ok(api.get(service, path, params={**params, **after}))
        assert set(page) >= {"items", "next_cursor"}
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError(f"{path} never reached its last page")


def test_walking_the_products_returns_each_once_in_sku_order(world: World) -> None:
    buyer = world.login(world.buyer_b)  # B has no assortment: it sees every product
    walked = _walk(buyer, "catalog", "/v1/products", limit=2)
    skus = [p["sku"] for p in walked]
    assert len(skus) == len(set(skus)) and skus == sorted(skus)
    assert set(world.skus) <= set(skus)
    assert walked == ok(buyer.get("catalog", "/v1/products", params={"limit": 500}))["items"]
    # A search pages too.
    found = _walk(buyer, "catalog", "/v1/products", q=world.skus[0], limit=1)
    assert [p["sku"] for p in found] == [world.skus[0]]


def test_walking_the_orders_returns_each_once_newest_first(world: World) -> None:
    buyer = world.login(world.buyer_a)
    placed = []
    for n in range(5):
        ok(buyer.post("cart", "/v1/cart/items", json={"sku": world.skus[1], "quantity": 1}))
        order = ok(buyer.post("orders", "/v1/orders", headers={"Idempotency-Key": f"p-{n}"}), 201)
        placed.append(order["id"])
    walked = [o["id"] for o in _walk(buyer, "orders", "/v1/orders", limit=2)]
    assert walked == list(reversed(placed))
    first = ok(buyer.get("orders", "/v1/orders", params={"limit": 2}))
    assert len(first["items"]) == 2 and first["next_cursor"]
    last = ok(buyer.get("orders", "/v1/orders", params={"limit": 5}))
    assert len(last["items"]) == 5 and last["next_cursor"] is None


def test_walking_the_promotions_returns_each_once_newest_first(world: World) -> None:
    admin = world.admin
    group = unique("paging")
    created = [
        ok(
            admin.post(
                "catalog",
                "/v1/promotions",
                json={
                    "name": unique("Promo"),
                    "kind": "percentage",
                    "value": "5",
                    "groups": [group],
                },
            ),
            201,
        )["id"]
        for _ in range(5)
    ]
    walked = [p["id"] for p in _walk(admin, "catalog", "/v1/promotions", group=group, limit=2)]
    assert sorted(walked) == sorted(created) and len(walked) == 5
    every = ok(admin.get("catalog", "/v1/promotions", params={"group": group}))["items"]
    assert walked == [p["id"] for p in every]


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


BAD_CURSORS = [
    "not-a-cursor",
    "%%%",
    _b64({"sku": "x"}),
    _b64(["a", "b", "c"]),
    _b64([1]),
    _b64(["not a time", "id"]),
    _b64(["2026-01-01T00:00:00", "id"]),  # no zone: not one we issued
    _b64(["0001-01-01T00:00:00+05:00", "id"]),  # before year 1 in UTC
    _b64(["9999-12-31T23:59:59-05:00", "id"]),  # after year 9999 in UTC
]


@pytest.mark.parametrize(
    ("service", "path", "caller"),
    [
        ("catalog", "/v1/products", "buyer"),
        ("orders", "/v1/orders", "buyer"),
        ("catalog", "/v1/promotions", "admin"),
    ],
)
def test_a_bad_cursor_or_limit_is_422(world: World, service: str, path: str, caller: str) -> None:
    api = world.admin if caller == "admin" else world.login(world.buyer_a)
    for cursor in BAD_CURSORS:
        response = api.get(service, path, params={"cursor": cursor})
        assert response.status_code == 422, (path, cursor, response.text)
        assert response.json()["detail"]
    for limit in (0, 100_000):
        assert api.get(service, path, params={"limit": limit}).status_code == 422
