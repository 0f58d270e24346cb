"""Who may not act for whom, and what an acting session may never do; refusals are audited."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support import World, audit_events, ok, security_reviewer, unique, wait_until


def test_caretaker_without_permission_is_refused_and_the_refusal_is_audited(world: World) -> None:
    staff = world.staff(roles=["sales_rep"], permissions=[], caretaker_of=[world.org_a])
    api = world.admin.login(staff["email"])
    refused = api.post(
        "identity", "/v1/acting-as", json={"customer_org_id": world.org_a["id"], "mode": "full"}
    )
    assert refused.status_code == 403
    assert refused.json()["reason"] == "missing permission place_orders_as_customer"
    assert world.org_a["id"] not in {
        c["id"] for c in ok(api.get("identity", "/v1/customers"))["items"]
    }

    reviewer = security_reviewer(world.admin)

    def denial() -> list[dict[str, Any]]:
        return audit_events(
            reviewer, actor_id=staff["id"], type="com.onbehalf.identity.acting_session.denied"
        )

    [event] = wait_until(denial, what="the denial in the audit log")
    assert event["subject"]["org_id"] == world.org_a["id"]
    assert event["data"]["reason"] == "missing permission place_orders_as_customer"
    assert event["acting_session_id"] is None
    assert event["policy_revision"]


def test_rep_with_permission_is_refused_for_a_customer_they_do_not_care_for(world: World) -> None:
    rep = world.login(world.rep)
    refused = rep.post(
        "identity", "/v1/acting-as", json={"customer_org_id": world.org_b["id"], "mode": "full"}
    )
    assert refused.status_code == 403
    assert refused.json()["reason"] == "not a caretaker of this customer organisation"


def test_acting_for_unknown_org_is_404_and_bad_mode_is_422(world: World) -> None:
    rep = world.login(world.rep)
    missing = rep.post(
        "identity", "/v1/acting-as", json={"customer_org_id": "nope", "mode": "full"}
    )
    assert missing.status_code == 404
    bad = rep.post(
        "identity", "/v1/acting-as", json={"customer_org_id": world.org_a["id"], "mode": "god"}
    )
    assert bad.status_code == 422 and "mode" in bad.json()["detail"]


def test_stopped_session_token_is_refused_by_cart_and_orders(world: World) -> None:
    rep = world.login(world.rep)
    acting, _ = world.act_as(rep, world.org_a)
    ok(acting.get("cart", "/v1/cart"))
    ok(acting.get("orders", "/v1/orders"))

    stopped = acting.delete("identity", "/v1/acting-as/current")
    assert stopped.status_code == 204
    # Identity knows at once; the other services learn it from the revocation bucket.
    assert acting.get("identity", "/v1/acting-as/current").status_code == 401
    for service, path in [
        ("cart", "/v1/cart"),
        ("orders", "/v1/orders"),
        ("catalog", "/v1/products"),
    ]:

        def refused(s: str = service, p: str = path) -> httpx.Response | None:
            response = acting.get(s, p)
            return response if response.status_code == 401 else None

        response = wait_until(refused, what=f"{service} refuses the ended session")
        assert response.json()["detail"] == "the acting session has ended"
    assert acting.delete("identity", "/v1/acting-as/current").status_code == 401
    # The staff member's own token still works: they signed in as themselves again.
    assert ok(rep.get("identity", "/v1/me"))["acting_as"] is None


def test_acting_session_cannot_escalate(world: World) -> None:
    rep = world.login(world.rep)
    acting, _ = world.act_as(rep, world.org_a)

    nested = acting.post(
        "identity", "/v1/acting-as", json={"customer_org_id": world.org_a["id"], "mode": "full"}
    )
    assert nested.status_code == 403
    assert nested.json()["reason"] == "an acting session cannot start another acting session"

    administration = "administration is never allowed while acting on behalf of a customer"
    users = "the customer's users, consent and sessions are never managed while acting"
    admin_calls = [
        (
            "identity",
            "POST",
            "/v1/orgs",
            {"name": "x", "contract_number": unique("X"), "country": "DE"},
            administration,
        ),
        (
            "identity",
            "POST",
            "/v1/users",
            {
                "email": unique("u") + "@x.test",
                "name": "x",
                "password": "password-1",
                "kind": "customer",
                "org_id": world.org_a["id"],
                "roles": ["admin"],
            },
            users,
        ),
        (
            "identity",
            "PATCH",
            f"/v1/users/{world.buyer_a['id']}",
            {"password": "new-password-1"},
            users,
        ),
        (
            "identity",
            "PATCH",
            f"/v1/orgs/{world.org_a['id']}",
            {"allow_assistance": False},
            administration,
        ),
        (
            "identity",
            "PUT",
            f"/v1/orgs/{world.org_a['id']}/caretakers/{world.rep['id']}",
            None,
            administration,
        ),
        (
            "catalog",
            "POST",
            "/v1/products",
            {"sku": unique("S"), "name": "x", "price": "1.00", "currency": "EUR"},
            administration,
        ),
        (
            "catalog",
            "PUT",
            f"/v1/customers/{world.org_a['id']}/prices/{world.skus[0]}",
            {"price": "0.01"},
            administration,
        ),
    ]
    for service, method, path, body, reason in admin_calls:
        response = acting.request(method, service, path, json=body)
        assert response.status_code == 403, (service, method, path, response.text)
        assert response.json()["reason"] == reason

    for path in ["/v1/audit/events", "/v1/audit/verify"]:
        response = acting.get("audit", path)
        assert response.status_code == 403
        assert response.json()["reason"] == (
            "the audit log cannot be read while acting on behalf of a customer"
        )
    # Nothing above changed anything: the buyer still logs in with the old password.
    world.login(world.buyer_a)


def test_customer_users_and_plain_staff_cannot_read_the_audit_log(world: World) -> None:
    for api in [world.login(world.buyer_a), world.login(world.rep)]:
        response = api.get("audit", "/v1/audit/events")
        assert response.status_code == 403
        assert response.json()["reason"]


def test_nobody_acts_for_the_seller_itself(world: World) -> None:
    seller_org_id = ok(world.admin.get("identity", "/v1/me"))["org_id"]
    for api in [world.admin, world.login(world.rep)]:
        refused = api.post(
            "identity", "/v1/acting-as", json={"customer_org_id": seller_org_id, "mode": "view"}
        )
        assert refused.status_code == 403
        assert refused.json()["reason"] == "the seller's own organisation cannot be acted for"
    listed = ok(world.admin.get("identity", "/v1/customers"))["items"]
    assert seller_org_id not in {c["id"] for c in listed}
