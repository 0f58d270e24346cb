"""What tests and benchmarks share: waiting on a condition with a deadline, a small client for the
public API, the one way to make a user and to act for a customer, and a fresh scenario (World)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from onbehalf.stack import Stack

T = TypeVar("T")

PASSWORD = "test-password-1"


def wait_until(
    condition: Callable[[], T | None],
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
    what: str = "",
) -> T:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"not true within {timeout}s: {what or condition} (last: {last!r})")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Api:
    """The system's public HTTP API, as one caller with one bearer token."""

    stack: Stack
    client: httpx.Client
    token: str | None = None

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {**headers, **(extra or {})}

    def request(
        self,
        method: str,
        service: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> httpx.Response:
        return self.client.request(
            method, self.stack.url(service) + path, headers=self.headers(headers), **kw
        )

    def get(self, service: str, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", service, path, **kw)

    def post(self, service: str, path: str, **kw: Any) -> httpx.Response:
        return self.request("POST", service, path, **kw)

    def put(self, service: str, path: str, **kw: Any) -> httpx.Response:
        return self.request("PUT", service, path, **kw)

    def patch(self, service: str, path: str, **kw: Any) -> httpx.Response:
        return self.request("PATCH", service, path, **kw)

    def delete(self, service: str, path: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", service, path, **kw)

    def with_token(self, token: str) -> Api:
        return Api(stack=self.stack, client=self.client, token=token)

    def login(self, email: str, password: str = PASSWORD) -> Api:
        response = self.client.post(
            self.stack.url("identity") + "/v1/auth/token",
            json={"email": email, "password": password},
        )
        assert response.status_code == 200, response.text
        return self.with_token(response.json()["access_token"])


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json() if response.content else None


def new_user(
    admin: Api,
    *,
    kind: str,
    roles: list[str],
    org_id: str | None = None,
    permissions: list[str] | None = None,
) -> dict[str, Any]:
    """The one way a test makes a user: through the public API, as `admin` (a platform admin,
    or a customer's admin for its own organisation)."""
    body: dict[str, Any] = {
        "email": unique(kind) + ("@seller.test" if kind == "staff" else "@example.test"),
        "name": unique(kind.capitalize()),
        "password": PASSWORD,
        "kind": kind,
        "roles": roles,
        "permissions": permissions or [],
    }
    if org_id:
        body["org_id"] = org_id
    return dict(ok(admin.post("identity", "/v1/users", json=body), 201))


def act_as(staff: Api, org_id: str, mode: str = "full") -> tuple[Api, dict[str, Any]]:
    """The one way to start acting: `staff` (signed in as themselves) acts for `org_id`;
    (the acting API, the started session)."""
    started = ok(
        staff.post("identity", "/v1/acting-as", json={"customer_org_id": org_id, "mode": mode}),
        201,
    )
    return staff.with_token(started["access_token"]), started


@dataclass
class World:
    """A fresh scenario per test: two customers, their users, staff, products and prices."""

    admin: Api
    org_a: dict[str, Any]
    org_b: dict[str, Any]
    rep: dict[str, Any]
    buyer_a: dict[str, Any]
    buyer_b: dict[str, Any]
    viewer_a: dict[str, Any]
    skus: list[str]

    def login(self, user: dict[str, Any]) -> Api:
        return self.admin.login(user["email"])

    def act_as(
        self, staff: Api, org: dict[str, Any], mode: str = "full"
    ) -> tuple[Api, dict[str, Any]]:
        return act_as(staff, org["id"], mode)

    def customer_user(self, org: dict[str, Any], roles: list[str]) -> dict[str, Any]:
        return new_user(self.admin, kind="customer", roles=roles, org_id=org["id"])

    def staff(
        self, *, roles: list[str], permissions: list[str], caretaker_of: list[dict[str, Any]]
    ) -> dict[str, Any]:
        user = new_user(self.admin, kind="staff", roles=roles, permissions=permissions)
        for org in caretaker_of:
            ok(self.admin.put("identity", f"/v1/orgs/{org['id']}/caretakers/{user['id']}"), 204)
        return user


def build_world(admin: Api) -> World:
    def org(label: str) -> dict[str, Any]:
        body = {"name": unique(label), "contract_number": unique("C"), "country": "DE"}
        return dict(ok(admin.post("identity", "/v1/orgs", json=body), 201))

    def user(
        kind: str, org_id: str | None, roles: list[str], permissions: list[str] | None = None
    ) -> dict[str, Any]:
        return new_user(admin, kind=kind, roles=roles, org_id=org_id, permissions=permissions)

    org_a, org_b = org("Customer A"), org("Customer B")
    rep = user("staff", None, ["sales_rep"], ["place_orders_as_customer"])
    ok(admin.put("identity", f"/v1/orgs/{org_a['id']}/caretakers/{rep['id']}"), 204)
    skus = [unique("SKU"), unique("SKU"), unique("SKU")]
    for index, sku in enumerate(skus):
        body = {
            "sku": sku,
            "name": f"Product {index}",
            "price": f"{10 + index}.00",
            "currency": "EUR",
        }
        ok(admin.post("catalog", "/v1/products", json=body), 201)
    # A has its own price on the first product and sees only the first two products.
    ok(
        admin.put(
            "catalog", f"/v1/customers/{org_a['id']}/prices/{skus[0]}", json={"price": "7.50"}
        )
    )
    ok(admin.put("catalog", f"/v1/customers/{org_a['id']}/assortment", json={"skus": skus[:2]}))
    return World(
        admin=admin,
        org_a=org_a,
        org_b=org_b,
        rep=rep,
        buyer_a=user("customer", org_a["id"], ["buyer"]),
        buyer_b=user("customer", org_b["id"], ["buyer"]),
        viewer_a=user("customer", org_a["id"], ["viewer"]),
        skus=skus,
    )


def audit_events(reader: Api, **filters: str) -> list[dict[str, Any]]:
    body = ok(reader.get("audit", "/v1/audit/events", params={"limit": 500, **filters}))
    return list(body["items"])
