"""Catalog test helpers: customers with users, products, promotions and groups via the admin API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support import PASSWORD, Api, ok, unique


@dataclass
class Customer:
    """One customer organisation with a buyer and a viewer, and a caretaker who may act fully."""

    org: dict[str, Any]
    buyer: dict[str, Any]
    viewer: dict[str, Any]
    rep: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.org["id"])


def create_user(
    admin: Api,
    *,
    kind: str,
    roles: list[str],
    org_id: str | None = None,
    permissions: list[str] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "email": unique(kind) + "@catalog.test",
        "name": unique(kind.capitalize()),
        "password": PASSWORD,
        "kind": kind,
        "roles": roles,
        "permissions": permissions or [],
    }
    if org_id:
        body["org_id"] = org_id
    return dict(ok(admin.post("identity", "/v1/users", json=body), 201))


def create_customer(admin: Api, label: str) -> Customer:
    body = {"name": unique(label), "contract_number": unique("K"), "country": "DE"}
    org = dict(ok(admin.post("identity", "/v1/orgs", json=body), 201))
    rep = create_user(
        admin, kind="staff", roles=["sales_rep"], permissions=["place_orders_as_customer"]
    )
    ok(admin.put("identity", f"/v1/orgs/{org['id']}/caretakers/{rep['id']}"), 204)
    return Customer(
        org=org,
        buyer=create_user(admin, kind="customer", roles=["buyer"], org_id=org["id"]),
        viewer=create_user(admin, kind="customer", roles=["viewer"], org_id=org["id"]),
        rep=rep,
    )


def act_as(admin: Api, staff: dict[str, Any], customer: Customer, mode: str) -> Api:
    """A fresh acting session of `staff` for `customer` in `mode`."""
    staff_api = admin.login(staff["email"])
    started = ok(
        staff_api.post(
            "identity", "/v1/acting-as", json={"customer_org_id": customer.id, "mode": mode}
        ),
        201,
    )
    return staff_api.with_token(started["access_token"])


def create_product(admin: Api, *, price: str, currency: str = "EUR", name: str = "") -> str:
    sku = unique("CAT")
    body = {"sku": sku, "name": name or f"Product {sku}", "price": price, "currency": currency}
    ok(admin.post("catalog", "/v1/products", json=body), 201)
    return sku


def at(delta: timedelta) -> str:
    """An ISO 8601 UTC time `delta` from now."""
    return (datetime.now(UTC) + delta).isoformat()


def create_promotion(admin: Api, **body: Any) -> dict[str, Any]:
    body.setdefault("name", unique("Promo"))
    return dict(ok(admin.post("catalog", "/v1/promotions", json=body), 201))


def put_in_groups(admin: Api, customer: Customer, *groups: str) -> None:
    ok(admin.put("catalog", f"/v1/customers/{customer.id}/groups", json={"groups": list(groups)}))


def products(api: Api, q: str | None = None) -> dict[str, dict[str, Any]]:
    """The caller's product list by SKU."""
    params = {"q": q} if q is not None else None
    body = ok(api.get("catalog", "/v1/products", params=params))
    return {item["sku"]: item for item in body["items"]}
