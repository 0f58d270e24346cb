"""Demo data, loaded through the public API as the platform admin (so it is audited too)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

DEMO_PASSWORD = "demo-password"


@dataclass
class DemoData:
    customers: dict[str, str]  # name -> org id
    logins: list[tuple[str, str]]  # (email, what the login is)


def _check(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise RuntimeError(
            f"{response.request.method} {response.request.url} -> "
            f"{response.status_code}: {response.text}"
        )
    return response.json() if response.content else None


def login(client: httpx.Client, identity_url: str, email: str, password: str) -> str:
    body = _check(
        client.post(f"{identity_url}/v1/auth/token", json={"email": email, "password": password})
    )
    return str(body["access_token"])


def load_demo_data(urls: dict[str, str], *, admin_email: str, admin_password: str) -> DemoData:
    with httpx.Client(timeout=10.0) as client:
        token = login(client, urls["identity"], admin_email, admin_password)
        client.headers["Authorization"] = f"Bearer {token}"
        identity, catalog = urls["identity"], urls["catalog"]

        orgs = {}
        for name, contract, country in [
            ("Acme Industrial GmbH", "ACME-1001", "DE"),
            ("Borealis Foods AB", "BOR-2002", "SE"),
            ("Castellan Tools SpA", "CAS-3003", "IT"),
        ]:
            body = {"name": name, "contract_number": contract, "country": country}
            orgs[name] = _check(client.post(f"{identity}/v1/orgs", json=body))["id"]
        acme, borealis = orgs["Acme Industrial GmbH"], orgs["Borealis Foods AB"]

        def user(email: str, name: str, kind: str, **extra: Any) -> str:
            body = {"email": email, "name": name, "password": DEMO_PASSWORD, "kind": kind, **extra}
            return str(_check(client.post(f"{identity}/v1/users", json=body))["id"])

        rep = user(
            "rep@seller.example",
            "Rita Rep",
            "staff",
            roles=["sales_rep"],
            permissions=["place_orders_as_customer"],
        )
        csr = user(
            "csr@seller.example",
            "Carl Service",
            "staff",
            roles=["csr"],
            permissions=["view_as_customer"],
        )
        user("reviewer@seller.example", "Rosa Reviewer", "staff", roles=["security_reviewer"])
        user("buyer@acme.example", "Anna Buyer", "customer", org_id=acme, roles=["buyer"])
        user("admin@acme.example", "Arne Admin", "customer", org_id=acme, roles=["admin"])
        user("buyer@borealis.example", "Bo Buyer", "customer", org_id=borealis, roles=["buyer"])
        for org_id, staff_id in [(acme, rep), (borealis, rep), (acme, csr)]:
            _check(client.put(f"{identity}/v1/orgs/{org_id}/caretakers/{staff_id}"))

        for sku, name, price in [
            ("BOLT-M8", "Hex bolt M8 x 40, box of 100", "12.40"),
            ("NUT-M8", "Hex nut M8, box of 100", "6.90"),
            ("DRILL-10", "HSS drill bit 10 mm", "8.75"),
            ("GLOVE-L", "Work gloves, size L", "4.20"),
            ("OIL-5L", "Cutting oil, 5 l", "39.00"),
        ]:
            body = {"sku": sku, "name": name, "price": price, "currency": "EUR"}
            _check(client.post(f"{catalog}/v1/products", json=body))
        _check(client.put(f"{catalog}/v1/customers/{acme}/prices/BOLT-M8", json={"price": "10.90"}))
        _check(client.put(f"{catalog}/v1/customers/{acme}/prices/OIL-5L", json={"price": "35.50"}))
        _check(
            client.put(
                f"{catalog}/v1/customers/{borealis}/assortment",
                json={"skus": ["GLOVE-L", "OIL-5L"]},
            )
        )
        _check(
            client.put(f"{catalog}/v1/customers/{borealis}/groups", json={"groups": ["nordics"]})
        )
        promotion = {
            "name": "Nordic winter gloves",
            "kind": "percentage",
            "value": "15",
            "groups": ["nordics"],
            "skus": ["GLOVE-L"],
        }
        _check(client.post(f"{catalog}/v1/promotions", json=promotion))
        # Acme's buyer files bolts under Acme's own material number.
        client.headers["Authorization"] = "Bearer " + login(
            client, identity, "buyer@acme.example", DEMO_PASSWORD
        )
        _check(
            client.put(
                f"{catalog}/v1/products/BOLT-M8/customer-number", json={"number": "ACME-4711"}
            )
        )
    return DemoData(
        customers=orgs,
        logins=[
            ("rep@seller.example", "sales rep, caretaker of Acme and Borealis, full acting"),
            ("csr@seller.example", "customer service, caretaker of Acme, view-only acting"),
            ("reviewer@seller.example", "security reviewer, reads the audit log"),
            ("buyer@acme.example", "buyer at Acme (own prices on BOLT-M8, OIL-5L; ACME-4711)"),
            ("admin@acme.example", "admin at Acme"),
            ("buyer@borealis.example", "buyer at Borealis (GLOVE-L, OIL-5L; 15 % off gloves)"),
        ],
    )
