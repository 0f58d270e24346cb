"""Catalog test helpers: customers with users, products, promotions and groups via the admin API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support import Api, new_user, ok, unique
from tests.support import act_as as start_acting


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


# Users are made the one way (tests.support.new_user); the catalog tests call it create_user.
create_user = new_user


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
    acting, _ = start_acting(admin.login(staff["email"]), customer.id, mode)
    return acting


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
