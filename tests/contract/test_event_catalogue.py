"""The event catalogue (docs/asyncapi.json) is current, names every contract, and every event a
real flow emits is valid against it: type, source, envelope and data (docs/api.md#events)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from jsonschema import Draft7Validator, FormatChecker
from referencing import Registry
from referencing.jsonschema import DRAFT7

from libs.contracts import event_types
from libs.contracts.base import TYPE_PREFIX, event_name
from onbehalf.events_cli import catalogue, stale
from tests.cart.people import acting_staff, reviewer
from tests.support import PASSWORD, Api, World, customer_admin, ok, unique, wait_until

BATCH = "application/cloudevents-batch+json"
DOCUMENT_URI = "urn:onbehalf:asyncapi"


def test_the_exported_catalogue_is_current() -> None:
    assert not stale(), "run: .venv/bin/onbehalf events export"


def test_the_catalogue_names_every_contract_with_its_subject_type_and_source() -> None:
    document = catalogue()
    assert document["asyncapi"].startswith("3.")
    messages = document["components"]["messages"]
    assert set(messages) == {event_name(t) for t in event_types()}
    for event_type, contract in event_types().items():
        name = event_name(event_type)
        owner = name.split(".")[0]
        assert document["channels"][name]["address"] == contract.subject()
        assert messages[name]["name"] == event_type and event_type.startswith(TYPE_PREFIX)
        narrowed = messages[name]["payload"]["allOf"][1]["properties"]
        assert narrowed["type"] == {"const": event_type}
        assert narrowed["source"] == {"const": f"urn:onbehalf:service:{owner}"}
        operation = document["operations"][f"{name}.send"]
        assert operation["action"] == "send"
        assert operation["channel"] == {"$ref": f"#/channels/{name}"}


def _validator(document: dict[str, Any], name: str) -> Draft7Validator:
    """The message payload schema of event `name`, its references resolved in the document."""
    registry: Registry[Any] = Registry().with_resource(
        DOCUMENT_URI, DRAFT7.create_resource(document)
    )
    schema = {"$ref": f"{DOCUMENT_URI}#/components/messages/{name}/payload"}
    return Draft7Validator(schema, registry=registry, format_checker=FormatChecker())


def _newest_seq(audit: Api) -> int:
    items = ok(audit.get("audit", "/v1/audit/events", params={"limit": 1}))["items"]
    return int(items[0]["seq"]) if items else 0


def _served_since(audit: Api, seq: int) -> list[dict[str, Any]]:
    """Every stored envelope after `seq`, oldest first, as the audit API serves them."""
    found: list[dict[str, Any]] = []
    url: str | None = (
        audit.stack.url("audit")
        + f"/v1/audit/events?format=cloudevents&order=asc&limit=500&cursor={seq}"
    )
    while url:
        response = audit.client.get(url, headers=audit.headers({"Accept": BATCH}))
        assert response.status_code == 200, response.text
        found.extend(response.json())
        url = httpx.Response(200, headers=response.headers).links.get("next", {}).get("url")
    return found


def _flow(world: World) -> None:
    """Acting staff lock the cart, fill it, keep a list and order; the customer's admin cancels;
    a stranger is refused acting, a login fails; the acting session ends. Before that, a new
    organisation with a product of its own (the world's set-up came before the marker)."""
    org = ok(
        world.admin.post(
            "identity",
            "/v1/orgs",
            json={"name": unique("Catalogued"), "contract_number": unique("C"), "country": "AT"},
        ),
        201,
    )
    sku = unique("SKU")
    product = {"sku": sku, "name": "Catalogued", "price": "4.00", "currency": "EUR"}
    ok(world.admin.post("catalog", "/v1/products", json=product), 201)
    ok(
        world.admin.put(
            "catalog", f"/v1/customers/{org['id']}/prices/{sku}", json={"price": "3.50"}
        )
    )
    ok(world.admin.put("catalog", f"/v1/customers/{org['id']}/assortment", json={"skus": [sku]}))
    admin, _admin_user = customer_admin(world, world.org_a)
    acting, _staff, _session = acting_staff(world)
    first, second = world.skus[0], world.skus[1]
    ok(acting.post("cart", "/v1/cart/lock"))
    ok(acting.post("cart", "/v1/cart/items", json={"sku": first, "quantity": 2}))
    ok(acting.post("cart", "/v1/cart/items", json={"sku": second, "quantity": 1}))
    ok(acting.patch("cart", f"/v1/cart/items/{first}", json={"quantity": 3}))
    ok(acting.delete("cart", f"/v1/cart/items/{second}"))
    saved = ok(
        acting.post(
            "cart",
            "/v1/saved-lists",
            json={"name": unique("List"), "items": [{"sku": second, "quantity": 1}]},
        ),
        201,
    )
    ok(acting.post("cart", f"/v1/saved-lists/{saved['id']}/add-to-cart"))
    order = ok(acting.post("orders", "/v1/orders", headers={"Idempotency-Key": unique("k")}), 201)
    ok(admin.post("orders", f"/v1/orders/{order['id']}/cancel", json={"reason": "a test"}))
    stranger = world.staff(roles=["sales_rep"], permissions=["view_as_customer"], caretaker_of=[])
    denied = world.admin.login(stranger["email"]).post(
        "identity", "/v1/acting-as", json={"customer_org_id": world.org_b["id"], "mode": "view"}
    )
    assert denied.status_code == 403
    failed = world.admin.post(
        "identity",
        "/v1/auth/token",
        json={"email": world.buyer_b["email"], "password": PASSWORD + "-wrong"},
    )
    assert failed.status_code == 401
    assert acting.delete("identity", "/v1/acting-as/current").status_code == 204


# What the world's set-up and the flow emit, at the least: every service, the kinds of events
# the flow was written to reach (cart's check-out follows the order, asynchronously).
FLOW_EVENTS = {
    "identity.org.created",
    "identity.user.created",
    "identity.caretaker.assigned",
    "identity.acting_session.started",
    "identity.acting_session.denied",
    "identity.acting_session.ended",
    "identity.login.failed",
    "catalog.product.created",
    "catalog.customer_price.set",
    "catalog.assortment.set",
    "cart.lock.acquired",
    "cart.item.added",
    "cart.item.changed",
    "cart.item.removed",
    "cart.saved_list.created",
    "cart.saved_list.added_to_cart",
    "cart.checked_out",
    "orders.order.placed",
    "orders.order.cancelled",
}


def test_every_event_of_a_real_flow_is_in_the_catalogue_and_valid(world: World) -> None:
    audit = reviewer(world)
    start = _newest_seq(audit)  # the flow's events come after this record
    _flow(world)
    expected = {TYPE_PREFIX + name for name in FLOW_EVENTS}

    seen: set[str] = set()

    def all_audited() -> list[dict[str, Any]] | None:
        served = _served_since(audit, start)
        seen.update(event["type"] for event in served)
        return served if expected <= seen else None

    try:
        served = wait_until(all_audited, timeout=30.0, what="the flow's events audited")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; never audited: {sorted(expected - seen)}") from None
    document = catalogue()
    messages = document["components"]["messages"]
    types: set[str] = set()
    for event in served:
        name = event_name(event["type"])
        assert name in messages, f"{event['type']} is not in docs/asyncapi.json"
        problems = [
            f"{'/'.join(str(p) for p in error.absolute_path)}: {error.message}"
            for error in _validator(document, name).iter_errors(event)
        ]
        assert not problems, (event["type"], problems)
        types.add(name)
    print(f"\n{len(served)} events of {len(types)} types valid against docs/asyncapi.json:")
    print(", ".join(sorted(types)))


@pytest.mark.parametrize("name", ["orders.order.placed", "cart.item.added"])
def test_the_catalogue_refuses_what_breaks_a_contract(name: str) -> None:
    """The schemas have teeth: a wrong type, a relative source or data missing a field fail."""
    document = catalogue()
    owner = name.split(".")[0]
    envelope = {
        "specversion": "1.0",
        "id": "e-1",
        "source": f"urn:onbehalf:service:{owner}",
        "type": TYPE_PREFIX + name,
        "time": "2026-12-02T10:00:00Z",
        "datacontenttype": "application/json",
        "policyrevision": "r",
        "signature": "s",
        "signaturekid": "k",
        "data": {},
    }
    validator = _validator(document, name)
    assert any("required" in e.message for e in validator.iter_errors(envelope))
    for broken in (
        {"source": f"/onbehalf/{owner}"},
        {"type": name},
        {"source": "urn:onbehalf:service:audit"},
    ):
        assert not validator.is_valid({**envelope, **broken}), broken
