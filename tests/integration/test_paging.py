"""Cursor paging of every list: each item exactly once, in the list's order; bad cursors 422."""

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


def test_walking_employees_and_invitations_returns_each_once(world: World) -> None:
    admin_a = world.login(world.customer_user(world.org_a, ["admin"]))
    for _ in range(3):
        world.customer_user(world.org_a, ["buyer"])
    employees_path = f"/v1/orgs/{world.org_a['id']}/employees"
    walked = _walk(admin_a, "identity", employees_path, limit=2)
    keys = [(e["name"], e["id"]) for e in walked]
    assert keys == sorted(keys) and len(set(keys)) == 6  # two of the world, four here
    assert walked == ok(admin_a.get("identity", employees_path, params={"limit": 500}))["items"]

    invitations_path = f"/v1/orgs/{world.org_a['id']}/invitations"
    invited = []
    for _ in range(5):
        body = {"email": unique("invitee") + "@example.test", "name": "New", "roles": ["buyer"]}
        invited.append(ok(admin_a.post("identity", invitations_path, json=body), 201)["id"])
    # One revoked: a status filter pages over what matches, however the rows fall in batches.
    ok(admin_a.delete("identity", f"{invitations_path}/{invited[2]}"))
    walked_ids = [i["id"] for i in _walk(admin_a, "identity", invitations_path, limit=2)]
    assert walked_ids == list(reversed(invited))
    pending = _walk(admin_a, "identity", invitations_path, status="pending", limit=1)
    assert [i["id"] for i in pending] == [i for i in reversed(invited) if i != invited[2]]


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


# Refused by every list: not base64 JSON, not a list, a list of the wrong length or types.
BAD_CURSORS = ["not-a-cursor", "%%%", _b64({"sku": "x"}), _b64(["a", "b", "c"]), _b64([1])]
# Refused where the cursor holds a time (newest-first lists) or a single key (products).
BAD_TIME_CURSORS = [
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
        ("identity", "/v1/orgs/{org}/employees", "admin"),
        ("identity", "/v1/orgs/{org}/invitations", "admin"),
        ("identity", "/v1/orgs/{org}/acting-sessions", "admin"),
        ("identity", "/v1/customers", "admin"),
    ],
)
def test_a_bad_cursor_or_limit_is_422(world: World, service: str, path: str, caller: str) -> None:
    api = world.admin if caller == "admin" else world.login(world.buyer_a)
    path = path.format(org=world.org_a["id"])
    # (name, id): any two strings are a position
    by_name = path.endswith(("/employees", "/customers"))
    for cursor in BAD_CURSORS + ([] if by_name else BAD_TIME_CURSORS):
        response = api.get(service, path, params={"cursor": cursor})
        assert response.status_code == 422, (path, cursor, response.text)
        assert response.json()["detail"]
    for limit in (0, 100_000):
        assert api.get(service, path, params={"limit": limit}).status_code == 422
