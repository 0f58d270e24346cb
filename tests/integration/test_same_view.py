"""Exactly what the customer sees: every read of catalog, cart and orders, buyer vs acting staff."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from tests.catalog.helpers import (
    Customer,
    act_as,
    at,
    create_customer,
    create_product,
    create_promotion,
    create_user,
    products,
    put_in_groups,
)
from tests.support import Api, ok, unique, wait_until

DAY = timedelta(days=1)

# Fields of a read body that would by design name the reader rather than the customer's
# data. None of today's bodies has one: `placed_by` and `lock.holder` name who placed an
# order or holds the lock, which is the same whoever reads it. A field added here must say why.
READER_FIELDS: frozenset[str] = frozenset()

# GET endpoints that are not the customer's world: operations, and seller-side administration
# (a customer's users and acting sessions are both refused there).
NOT_THE_CUSTOMERS_WORLD = {
    ("catalog", "/v1/promotions"),
    ("catalog", "/v1/promotions/{promotion_id}"),
    ("catalog", "/v1/customers/{org_id}/groups"),
    # The customer admin's alone (never while acting): refused to buyers and acting staff alike.
    ("orders", "/v1/budgets"),
}
# About the reader, not the customer's world: the budget the caller's own orders count against.
# An acting session is none of the customer's users and has no budget of its own (its orders
# count against the assisted-orders budget, and a refusal says what is left of it): refused.
ABOUT_THE_READER = {("orders", "/v1/budgets/mine")}
# Not the customer's world: probes, metrics and the service's public event-signing key.
OPERATIONS = {"/healthz", "/readyz", "/metrics", "/.well-known/event-keys.json"}
SERVICES = ("catalog", "cart", "orders")


@dataclass
class Scenario:
    """One customer, the people who read its world, and what the reads must contain."""

    customer: Customer
    readers: dict[str, Api]
    searches: list[str]
    expected_prices: dict[str, str]
    expected_numbers: dict[str, str]
    expected_promotions: dict[str, str | None]
    cart_skus: set[str] = field(default_factory=set)
    order_ids: list[str] = field(default_factory=list)
    list_id: str = ""


# ---------------------------------------------------------------- building the world


def _readers(admin: Api, customer: Customer) -> dict[str, Api]:
    """The customer's buyer, a CSR acting read-only, and its caretaker acting fully."""
    csr = create_user(admin, kind="staff", roles=["csr"], permissions=["view_as_customer"])
    ok(admin.put("identity", f"/v1/orgs/{customer.id}/caretakers/{csr['id']}"), 204)
    return {
        "buyer": admin.login(customer.buyer["email"]),
        "acting view": act_as(admin, csr, customer, "view"),
        "acting full": act_as(admin, customer.rep, customer, "full"),
    }


def _cart_is_empty(api: Api) -> bool:
    return ok(api.get("cart", "/v1/cart"))["items"] == []


def _fill_history(scenario: Scenario, first: str, second: str) -> None:
    """An order placed on the customer's behalf, one placed by its buyer, then a cart that is
    not empty, locked by the acting staff member, and a saved list."""
    buyer, acting = scenario.readers["buyer"], scenario.readers["acting full"]
    ok(buyer.post("cart", "/v1/cart/items", json={"sku": first, "quantity": 2}))
    on_behalf = ok(
        acting.post("orders", "/v1/orders", headers={"Idempotency-Key": unique("o")}), 201
    )
    wait_until(lambda: _cart_is_empty(buyer), what="cart emptied by the first order")
    ok(buyer.post("cart", "/v1/cart/items", json={"sku": second, "quantity": 1}))
    own = ok(
        buyer.post(
            "orders",
            "/v1/orders",
            headers={"Idempotency-Key": unique("o")},
            json={"purchase_order_number": unique("PO")},
        ),
        201,
    )
    wait_until(lambda: _cart_is_empty(buyer), what="cart emptied by the second order")
    assert on_behalf["placed_on_behalf"] and not own["placed_on_behalf"]
    scenario.order_ids = [on_behalf["id"], own["id"]]

    saved = ok(
        buyer.post(
            "cart",
            "/v1/saved-lists",
            json={"name": unique("Weekly"), "items": [{"sku": second, "quantity": 5}]},
        ),
        201,
    )
    scenario.list_id = saved["id"]
    ok(buyer.post("cart", "/v1/cart/items", json={"sku": first, "quantity": 1}))
    ok(acting.post("cart", "/v1/cart/items", json={"sku": second, "quantity": 3}))
    ok(acting.post("cart", "/v1/cart/lock"))
    scenario.cart_skus = {first, second}


@pytest.fixture(scope="module")
def scenarios(admin: Api) -> list[Scenario]:
    """Three customers that see different assortments, prices, promotions and numbers."""
    p = [create_product(admin, price=price) for price in ("10.00", "20.00", "30.00", "40.00")]
    # Numbers unique to this run, so a search finds nothing another test made.
    n100, n200, s4, e3, eusd = (unique(label) for label in ("N100", "N200", "S4", "E3", "EUSD"))
    dollars = create_product(admin, price="50.00", currency="USD")
    north, south, east = (create_customer(admin, label) for label in ("North", "South", "East"))
    south_group, east_group = unique("wholesale"), unique("key-accounts")

    # North: three products, its own price on the first, 10 % on everything for North alone.
    ok(admin.put("catalog", f"/v1/customers/{north.id}/assortment", json={"skus": p[:3]}))
    ok(admin.put("catalog", f"/v1/customers/{north.id}/prices/{p[0]}", json={"price": "7.50"}))
    north_promo = create_promotion(
        admin, kind="percentage", value="10", org_ids=[north.id], valid_to=at(DAY)
    )
    # South: the whole catalog (no assortment); 2.00 EUR off two products for its group.
    put_in_groups(admin, south, south_group)
    ok(admin.put("catalog", f"/v1/customers/{south.id}/prices/{p[3]}", json={"price": "35.00"}))
    south_promo = create_promotion(
        admin, kind="fixed", value="2.00", currency="EUR", groups=[south_group], skus=[p[1], p[3]]
    )
    # East: four products; half price on one for its group; a scheduled and an ended
    # promotion that must show nowhere; a fixed EUR amount that never touches USD prices.
    put_in_groups(admin, east, east_group, south_group)
    ok(
        admin.put(
            "catalog",
            f"/v1/customers/{east.id}/assortment",
            json={"skus": [p[1], p[2], p[3], dollars]},
        )
    )
    east_promo = create_promotion(
        admin, kind="percentage", value="50", groups=[east_group], skus=[p[2]]
    )
    create_promotion(admin, kind="percentage", value="90", org_ids=[east.id], valid_from=at(DAY))
    ended = create_promotion(admin, kind="percentage", value="80", org_ids=[east.id])
    ok(admin.post("catalog", f"/v1/promotions/{ended['id']}/end"))
    create_promotion(
        admin, kind="fixed", value="5.00", currency="EUR", org_ids=[east.id], skus=[dollars]
    )

    built = [
        Scenario(
            customer=north,
            readers=_readers(admin, north),
            searches=[n100, n200.lower(), n100[:6], p[2], "Product", "zz-no-match"],
            expected_prices={p[0]: "6.75", p[1]: "18.00", p[2]: "27.00"},
            expected_numbers={p[0]: n100, p[1]: n200},
            expected_promotions={p[0]: north_promo["id"], p[1]: north_promo["id"]},
        ),
        Scenario(
            customer=south,
            readers=_readers(admin, south),
            searches=[s4, p[1], n100, "Product"],
            expected_prices={p[0]: "10.00", p[1]: "18.00", p[3]: "33.00", dollars: "50.00"},
            expected_numbers={p[3]: s4},
            expected_promotions={p[0]: None, p[1]: south_promo["id"], p[3]: south_promo["id"]},
        ),
        Scenario(
            customer=east,
            readers=_readers(admin, east),
            searches=[e3, eusd.upper(), dollars, n100],
            expected_prices={p[1]: "18.00", p[2]: "15.00", p[3]: "38.00", dollars: "50.00"},
            expected_numbers={p[2]: e3, dollars: eusd},
            expected_promotions={p[1]: south_promo["id"], p[2]: east_promo["id"], dollars: None},
        ),
    ]
    # The numbers: set by the buyer (North), by the acting staff member (South), by both (East).
    north_s, south_s, east_s = built
    for scenario, who, sku, number in [
        (north_s, "buyer", p[0], n100),
        (north_s, "buyer", p[1], n200),
        (south_s, "acting full", p[3], s4),
        (east_s, "buyer", p[2], e3),
        (east_s, "acting full", dollars, eusd),
    ]:
        api = scenario.readers[who]
        ok(api.put("catalog", f"/v1/products/{sku}/customer-number", json={"number": number}))

    _fill_history(north_s, p[0], p[1])
    _fill_history(south_s, p[1], p[3])
    _fill_history(east_s, p[2], p[3])
    return built


# ---------------------------------------------------------------- comparing


def _differences(left: Any, right: Any, path: str = "") -> list[str]:
    """Every field (as a dotted path) where two JSON bodies differ."""
    if isinstance(left, dict) and isinstance(right, dict):
        found = []
        for key in sorted(set(left) | set(right)):
            if key in READER_FIELDS:
                continue
            where = f"{path}.{key}" if path else key
            if key not in left or key not in right:
                found.append(f"{where}: only in {'left' if key in left else 'right'}")
            else:
                found += _differences(left[key], right[key], where)
        return found
    if isinstance(left, list) and isinstance(right, list):
        if len(left) != len(right):
            return [f"{path}: {len(left)} vs {len(right)} entries"]
        return [
            d
            for i, (a, b) in enumerate(zip(left, right, strict=True))
            for d in _differences(a, b, f"{path}[{i}]")
        ]
    return [] if left == right else [f"{path}: {left!r} vs {right!r}"]


def _same_for_everyone(
    scenario: Scenario, service: str, path: str, params: dict[str, str] | None = None
) -> Any:
    """The body every reader gets, after checking it is the same, field by field."""
    bodies = {
        who: ok(api.get(service, path, params=params)) for who, api in scenario.readers.items()
    }
    mine = bodies["buyer"]
    for who, body in bodies.items():
        diffs = _differences(mine, body)
        assert not diffs, f"{service} {path} {params or ''}: buyer vs {who}: {diffs}"
    return mine


def _reads(scenario: Scenario) -> list[tuple[str, str, str, dict[str, str] | None]]:
    """(service, path template, path, query) of every read, with this customer's ids."""
    reads: list[tuple[str, str, str, dict[str, str] | None]] = [
        ("catalog", "/v1/products", "/v1/products", None),
        *(("catalog", "/v1/products", "/v1/products", {"q": q}) for q in scenario.searches),
        ("cart", "/v1/cart", "/v1/cart", None),
        ("cart", "/v1/saved-lists", "/v1/saved-lists", None),
        ("cart", "/v1/saved-lists/{list_id}", f"/v1/saved-lists/{scenario.list_id}", None),
        ("orders", "/v1/orders", "/v1/orders", None),
    ]
    reads += [
        ("orders", "/v1/orders/{order_id}", f"/v1/orders/{order_id}", None)
        for order_id in scenario.order_ids
    ]
    return reads


# ---------------------------------------------------------------- the proof


def test_every_read_endpoint_is_compared(admin: Api, scenarios: list[Scenario]) -> None:
    """A new GET endpoint in catalog, cart or orders must join the comparison (or say why not)."""
    published = set()
    for service in SERVICES:
        schema = ok(admin.get(service, "/openapi.json"))
        published |= {
            (service, path)
            for path, operations in schema["paths"].items()
            if "get" in operations and path not in OPERATIONS
        }
    compared = {(service, template) for service, template, _, _ in _reads(scenarios[0])}
    assert published - NOT_THE_CUSTOMERS_WORLD - ABOUT_THE_READER == compared


def test_reads_about_the_reader_answer_the_buyer_and_refuse_acting_staff(
    scenarios: list[Scenario],
) -> None:
    scenario = scenarios[0]
    for service, path in ABOUT_THE_READER:
        for who, api in scenario.readers.items():
            expected = 200 if who == "buyer" else 403
            assert api.get(service, path).status_code == expected, (who, path)


def test_seller_side_reads_are_refused_to_buyer_and_acting_staff_alike(
    scenarios: list[Scenario],
) -> None:
    scenario = scenarios[0]
    for service, path in NOT_THE_CUSTOMERS_WORLD:
        concrete = path.replace("{org_id}", scenario.customer.id).replace("{promotion_id}", "x")
        for who, api in scenario.readers.items():
            assert api.get(service, concrete).status_code == 403, (who, path)


@pytest.mark.parametrize("index", [0, 1, 2], ids=["north", "south", "east"])
def test_acting_staff_see_exactly_what_the_customer_sees(
    scenarios: list[Scenario], index: int
) -> None:
    scenario = scenarios[index]
    seen: dict[tuple[str, str, str], Any] = {}
    for service, _template, path, params in _reads(scenario):
        seen[(service, path, str(params))] = _same_for_everyone(scenario, service, path, params)

    # The compared bodies hold this customer's world, not something trivially equal.
    listed = {p["sku"]: p for p in seen[("catalog", "/v1/products", "None")]["items"]}
    prices = {sku: listed[sku]["price"] for sku in scenario.expected_prices}
    assert prices == scenario.expected_prices
    numbers = {sku: p["customer_product_number"] for sku, p in listed.items()}
    assert {sku: n for sku, n in numbers.items() if n} == scenario.expected_numbers
    promotions = {
        sku: (listed[sku]["promotion"] or {}).get("id") for sku in scenario.expected_promotions
    }
    assert promotions == scenario.expected_promotions
    # Searching for one of its own numbers finds that product and nothing else.
    searched = 0
    for sku, number in scenario.expected_numbers.items():
        found = seen.get(("catalog", "/v1/products", str({"q": number})))
        if found is not None:
            assert [p["sku"] for p in found["items"]] == [sku]
            searched += 1
    assert searched

    cart = seen[("cart", "/v1/cart", "None")]
    assert {i["sku"] for i in cart["items"]} == scenario.cart_skus
    assert cart["lock"]["holder"]["id"] == scenario.customer.rep["id"]
    for item in cart["items"]:
        assert item["unit_price"] == listed[item["sku"]]["price"]  # the list's price, charged
    history = seen[("orders", "/v1/orders", "None")]
    assert sorted(o["id"] for o in history["items"]) == sorted(scenario.order_ids)
    for order in history["items"]:
        assert seen[("orders", f"/v1/orders/{order['id']}", "None")] == order
        for line in order["items"]:
            assert line["unit_price"] == listed[line["sku"]]["price"]


def test_customers_see_different_worlds(scenarios: list[Scenario]) -> None:
    """The comparison above would prove little if every customer saw the same catalog."""
    views = [products(s.readers["buyer"]) for s in scenarios]
    assert len({frozenset(v) for v in views}) == 3, "three different assortments"
    shared = set.intersection(*(set(v) for v in views))
    prices = {sku: {v[sku]["price"] for v in views} for sku in shared}
    assert any(len(seen) == 3 for seen in prices.values()), prices
