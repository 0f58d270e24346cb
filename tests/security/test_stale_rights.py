"""Rights are current: a change of roles or of an organisation's status refuses older tokens
everywhere within a second (issue 9, "stale rights in tokens")."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.support import World, ok, unique, wait_until

# The budget: a change of rights takes effect in every service within a second.
WITHIN_SECONDS = 1.0


def refused_within(
    call: Callable[[], httpx.Response], *, what: str, since: float
) -> httpx.Response:
    """Wait (at most WITHIN_SECONDS after `since`) until `call` answers 401."""

    def refused() -> httpx.Response | None:
        response = call()
        return response if response.status_code == 401 else None

    remaining = max(0.05, WITHIN_SECONDS - (time.monotonic() - since))
    return wait_until(refused, timeout=remaining, what=what)


def _demote(world: World, user: dict[str, Any], roles: list[str]) -> float:
    ok(world.admin.patch("identity", f"/v1/users/{user['id']}", json={"roles": roles}))
    return time.monotonic()


def _product(sku: str) -> dict[str, str]:
    return {"sku": sku, "name": "Stale rights probe", "price": "1.00", "currency": "EUR"}


def test_a_demoted_platform_admin_no_longer_creates_products(world: World) -> None:
    admin_user = world.staff(roles=["platform_admin"], permissions=[], caretaker_of=[])
    old = world.admin.login(admin_user["email"])
    ok(old.post("catalog", "/v1/products", json=_product(unique("SKU"))), 201)

    since = _demote(world, admin_user, ["sales_rep"])

    response = refused_within(
        lambda: old.post("catalog", "/v1/products", json=_product(unique("SKU"))),
        what="catalog refuses the demoted admin's old token",
        since=since,
    )
    assert "rights have changed" in response.json()["detail"]
    # Signed in again, the same person gets what the policy now says about them.
    fresh = world.admin.login(admin_user["email"])
    assert fresh.post("catalog", "/v1/products", json=_product(unique("SKU"))).status_code == 403


def test_a_removed_security_reviewer_no_longer_reads_the_audit_log(world: World) -> None:
    reviewer = world.staff(roles=["security_reviewer"], permissions=[], caretaker_of=[])
    old = world.admin.login(reviewer["email"])
    ok(old.get("audit", "/v1/audit/events", params={"limit": 1}))

    since = _demote(world, reviewer, [])

    refused_within(
        lambda: old.get("audit", "/v1/audit/events", params={"limit": 1}),
        what="audit refuses the removed reviewer's old token",
        since=since,
    )
    fresh = world.admin.login(reviewer["email"])
    assert fresh.get("audit", "/v1/audit/events", params={"limit": 1}).status_code == 403


def test_a_demoted_csr_supervisor_no_longer_takes_over_a_cart_lock(world: World) -> None:
    rep_acting, _ = world.act_as(world.login(world.rep), world.org_a)
    ok(rep_acting.post("cart", "/v1/cart/lock"))
    supervisor = world.staff(
        roles=["csr_supervisor"], permissions=["place_orders_as_customer"], caretaker_of=[]
    )
    ok(
        world.admin.put("identity", f"/v1/orgs/{world.org_a['id']}/caretakers/{supervisor['id']}"),
        204,
    )
    supervisor_acting, _ = world.act_as(world.admin.login(supervisor["email"]), world.org_a)
    ok(supervisor_acting.get("cart", "/v1/cart"))

    # Still a csr who may act for the customer: the policy alone would let the session go on,
    # with the supervisor role in its token.
    since = _demote(world, supervisor, ["csr"])

    refused_within(
        lambda: supervisor_acting.get("cart", "/v1/cart"),
        what="cart refuses the demoted supervisor's acting token",
        since=since,
    )
    takeover = supervisor_acting.post("cart", "/v1/cart/lock/takeover")
    assert takeover.status_code == 401, takeover.text
    cart = ok(rep_acting.get("cart", "/v1/cart"))
    assert cart["lock"]["holder"]["id"] == world.rep["id"]


def test_an_obsolete_organisations_buyer_no_longer_shops(world: World) -> None:
    buyer = world.login(world.buyer_a)
    item = {"sku": world.skus[0], "quantity": 1}
    ok(buyer.post("cart", "/v1/cart/items", json=item))

    ok(world.admin.patch("identity", f"/v1/orgs/{world.org_a['id']}", json={"status": "obsolete"}))
    since = time.monotonic()

    response = refused_within(
        lambda: buyer.post("cart", "/v1/cart/items", json=item),
        what="cart refuses the obsolete organisation's buyer",
        since=since,
    )
    assert response.json()["detail"] == "this organisation is not active"
    order = buyer.post("orders", "/v1/orders", headers={"Idempotency-Key": unique("order")})
    assert order.status_code == 401, order.text
    assert buyer.get("catalog", "/v1/products").status_code == 401
    # The other organisation's buyer is untouched.
    ok(world.login(world.buyer_b).post("cart", "/v1/cart/items", json=item))


def test_a_new_token_after_the_change_is_accepted(world: World) -> None:
    """Generations refuse older tokens only: reactivating the organisation and signing in
    again works, in every service."""
    buyer_token = world.login(world.buyer_a)
    ok(world.admin.patch("identity", f"/v1/orgs/{world.org_a['id']}", json={"status": "obsolete"}))
    refused_within(
        lambda: buyer_token.get("cart", "/v1/cart"),
        what="cart refuses the obsolete organisation's buyer",
        since=time.monotonic(),
    )
    ok(world.admin.patch("identity", f"/v1/orgs/{world.org_a['id']}", json={"status": "active"}))
    fresh = world.login(world.buyer_a)

    def accepted() -> bool:
        return all(
            fresh.get(service, path).status_code == 200
            for service, path in [("cart", "/v1/cart"), ("orders", "/v1/orders")]
        )

    wait_until(accepted, what="the new token is accepted once the organisation is active")
    assert buyer_token.get("cart", "/v1/cart").status_code == 401
