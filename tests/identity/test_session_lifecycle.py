"""Acting sessions end, switch and get revoked by every trigger; the token dies everywhere."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support import Api, World, audit_events, ok, unique, wait_until

SERVICES_TO_CHECK = [("cart", "/v1/cart"), ("orders", "/v1/orders"), ("catalog", "/v1/products")]


def assert_refused_everywhere(token: Api) -> None:
    """Every service refuses the token within the wait (the budget itself is benchmarked)."""
    assert token.get("identity", "/v1/acting-as/current").status_code == 401
    for service, path in SERVICES_TO_CHECK:

        def refused(s: str = service, p: str = path) -> httpx.Response | None:
            response = token.get(s, p)
            return response if response.status_code == 401 else None

        wait_until(refused, what=f"{service} refuses the revoked session")


def sessions_of(reader: Api, org: dict[str, Any]) -> list[dict[str, Any]]:
    return list(ok(reader.get("identity", f"/v1/orgs/{org['id']}/acting-sessions"))["items"])


def test_switching_ends_the_first_session_and_starts_the_second(world: World) -> None:
    ok(
        world.admin.put("identity", f"/v1/orgs/{world.org_b['id']}/caretakers/{world.rep['id']}"),
        204,
    )
    rep = world.login(world.rep)
    acting_a, started_a = world.act_as(rep, world.org_a)

    switched = ok(
        acting_a.post(
            "identity",
            "/v1/acting-as/switch",
            json={"customer_org_id": world.org_b["id"], "mode": "view"},
        ),
        201,
    )
    assert switched["subject"]["org_id"] == world.org_b["id"] and switched["mode"] == "view"
    acting_b = rep.with_token(switched["access_token"])
    assert ok(acting_b.get("cart", "/v1/cart"))["org_id"] == world.org_b["id"]
    assert_refused_everywhere(acting_a)

    [ended] = [
        s
        for s in sessions_of(world.admin, world.org_a)
        if s["session_id"] == started_a["session_id"]
    ]
    assert ended["end_reason"] == "switched" and ended["ended_at"]
    wanted = {
        ("com.onbehalf.identity.acting_session.ended", started_a["session_id"]),
        ("com.onbehalf.identity.acting_session.started", switched["session_id"]),
    }

    def recorded() -> set[tuple[str, str]] | None:
        events = audit_events(world.admin, actor_id=world.rep["id"])
        found = {(e["type"], e["acting_session_id"]) for e in events}
        return found if wanted <= found else None

    wait_until(recorded, what="both the end and the new start audited")


def test_a_refused_switch_keeps_the_current_session(world: World) -> None:
    rep = world.login(world.rep)
    acting, _ = world.act_as(rep, world.org_a)
    refused = acting.post(
        "identity",
        "/v1/acting-as/switch",
        json={"customer_org_id": world.org_b["id"], "mode": "full"},
    )
    assert refused.status_code == 403
    assert refused.json()["reason"] == "not a caretaker of this customer organisation"
    assert (
        ok(acting.get("identity", "/v1/acting-as/current"))["subject"]["org_id"]
        == world.org_a["id"]
    )
    # A plain staff token has no session to switch from.
    assert (
        rep.post(
            "identity", "/v1/acting-as/switch", json={"customer_org_id": world.org_a["id"]}
        ).status_code
        == 404
    )


def _change_caretaker(world: World) -> str:
    ok(
        world.admin.delete(
            "identity", f"/v1/orgs/{world.org_a['id']}/caretakers/{world.rep['id']}"
        ),
        204,
    )
    return "not a caretaker of this customer organisation"


def _withdraw_permission(world: World) -> str:
    ok(world.admin.patch("identity", f"/v1/users/{world.rep['id']}", json={"permissions": []}))
    return "missing permission place_orders_as_customer"


def _deactivate_staff(world: World) -> str:
    ok(world.admin.patch("identity", f"/v1/users/{world.rep['id']}", json={"active": False}))
    return "staff member is inactive"


def _customer_obsolete(world: World) -> str:
    ok(world.admin.patch("identity", f"/v1/orgs/{world.org_a['id']}", json={"status": "obsolete"}))
    return "customer organisation is not active"


def _consent_withdrawn(world: World) -> str:
    customer_admin = world.customer_user(world.org_a, ["admin"])
    own_admin = world.login(customer_admin)
    ok(
        own_admin.put(
            "identity", f"/v1/orgs/{world.org_a['id']}/consent", json={"allow_assistance": False}
        )
    )
    return "customer organisation has refused remote assistance"


@pytest.mark.parametrize(
    "trigger",
    [
        _change_caretaker,
        _withdraw_permission,
        _deactivate_staff,
        _customer_obsolete,
        _consent_withdrawn,
    ],
    ids=[
        "caretaker-removed",
        "permission-withdrawn",
        "staff-deactivated",
        "customer-obsolete",
        "consent-withdrawn",
    ],
)
def test_every_revocation_trigger_ends_the_session_everywhere(world: World, trigger: Any) -> None:
    rep = world.login(world.rep)
    acting, started = world.act_as(rep, world.org_a)
    ok(acting.get("cart", "/v1/cart"))

    reason = trigger(world)

    assert_refused_everywhere(acting)
    [record] = [
        s for s in sessions_of(world.admin, world.org_a) if s["session_id"] == started["session_id"]
    ]
    assert record["end_reason"] == "revoked"
    assert record["end_detail"] == reason
    # And no new session either, for the same reason.
    if reason == "staff member is inactive":
        refused_login = rep.client.post(
            rep.stack.url("identity") + "/v1/auth/token",
            json={"email": world.rep["email"], "password": "test-password-1"},
        )
        assert refused_login.status_code == 401
    else:
        # Signed in again: a change of the staff member's own rights also refuses older tokens.
        rep = world.login(world.rep)
        again = rep.post(
            "identity", "/v1/acting-as", json={"customer_org_id": world.org_a["id"], "mode": "full"}
        )
        assert again.status_code == 403 and again.json()["reason"] == reason


def test_customer_admin_sees_every_session_on_their_organisation(world: World) -> None:
    rep = world.login(world.rep)
    acting, started = world.act_as(rep, world.org_a)
    assert acting.delete("identity", "/v1/acting-as/current").status_code == 204
    customer_admin = world.customer_user(world.org_a, ["admin"])
    own_admin = world.login(customer_admin)
    [session] = sessions_of(own_admin, world.org_a)
    assert session["session_id"] == started["session_id"]
    assert session["actor"] == {"id": world.rep["id"], "name": world.rep["name"]}
    assert session["mode"] == "full" and session["end_reason"] == "stopped"

    for reader, reason in [
        (
            world.login(world.buyer_a),
            "only the customer's admin manages its users, consent and sessions",
        ),
        (own_admin, "this is another customer organisation"),
    ]:
        org = world.org_a if reader is not own_admin else world.org_b
        refused = reader.get("identity", f"/v1/orgs/{org['id']}/acting-sessions")
        assert refused.status_code == 403 and refused.json()["reason"] == reason


def test_never_while_acting_users_credentials_consent_or_sessions(world: World) -> None:
    rep = world.login(world.rep)
    acting, _ = world.act_as(rep, world.org_a)
    never = "the customer's users, consent and sessions are never managed while acting"
    calls = [
        ("PUT", f"/v1/orgs/{world.org_a['id']}/consent", {"allow_assistance": False}, never),
        ("GET", f"/v1/orgs/{world.org_a['id']}/acting-sessions", None, never),
        (
            "POST",
            "/v1/users",
            {
                "email": unique("x") + "@example.test",
                "name": "X",
                "password": "test-password-1",
                "kind": "customer",
                "org_id": world.org_a["id"],
                "roles": ["buyer"],
            },
            never,
        ),
        ("PATCH", f"/v1/users/{world.buyer_a['id']}", {"active": False}, never),
        (
            "PUT",
            "/v1/me/password",
            {"current_password": "test-password-1", "new_password": "another-password"},
            "credentials are never changed while acting on behalf of a customer",
        ),
    ]
    for method, path, body, reason in calls:
        response = acting.request(method, "identity", path, json=body)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["reason"] == reason
    world.login(world.buyer_a)  # still active, same password


def test_customer_admin_manages_their_own_users_only(world: World) -> None:
    customer_admin = world.customer_user(world.org_a, ["admin"])
    own_admin = world.login(customer_admin)
    body = {
        "name": "New Buyer",
        "password": "test-password-1",
        "kind": "customer",
        "roles": ["buyer"],
    }
    created = ok(
        own_admin.post(
            "identity",
            "/v1/users",
            json={**body, "email": unique("nb") + "@example.test", "org_id": world.org_a["id"]},
        ),
        201,
    )
    assert created["org_id"] == world.org_a["id"]
    other = own_admin.post(
        "identity",
        "/v1/users",
        json={**body, "email": unique("nb") + "@example.test", "org_id": world.org_b["id"]},
    )
    assert other.status_code == 403
    staff = own_admin.post(
        "identity",
        "/v1/users",
        json={
            **body,
            "email": unique("st") + "@seller.test",
            "kind": "staff",
            "roles": ["platform_admin"],
        },
    )
    assert staff.status_code == 403
    ok(own_admin.patch("identity", f"/v1/users/{created['id']}", json={"active": False}))
    refused = own_admin.client.post(
        own_admin.stack.url("identity") + "/v1/auth/token",
        json={"email": created["email"], "password": "test-password-1"},
    )
    assert refused.status_code == 401 and "deactivated" in refused.json()["detail"]


def test_users_change_their_own_password(world: World) -> None:
    buyer = world.login(world.buyer_a)
    wrong = buyer.put(
        "identity",
        "/v1/me/password",
        json={"current_password": "nope", "new_password": "brand-new-pass"},
    )
    assert wrong.status_code == 422
    assert (
        buyer.put(
            "identity",
            "/v1/me/password",
            json={"current_password": "test-password-1", "new_password": "brand-new-pass"},
        ).status_code
        == 204
    )
    world.admin.login(world.buyer_a["email"], "brand-new-pass")


def test_emails_are_unique_case_insensitively(world: World) -> None:
    upper = world.buyer_a["email"].upper()
    duplicate = world.admin.post(
        "identity",
        "/v1/users",
        json={
            "email": upper,
            "name": "Dup",
            "password": "test-password-1",
            "kind": "customer",
            "org_id": world.org_a["id"],
            "roles": ["buyer"],
        },
    )
    assert duplicate.status_code == 409
    world.admin.login(upper)


def test_customer_list_pages_searches_and_comes_from_the_policy(world: World) -> None:
    prefix = unique("Paged")
    staff = world.staff(roles=["sales_rep"], permissions=["view_as_customer"], caretaker_of=[])
    for index in range(23):
        org = ok(
            world.admin.post(
                "identity",
                "/v1/orgs",
                json={
                    "name": f"{prefix} {index:02d}",
                    "contract_number": unique("K"),
                    "country": "AT" if index % 2 else "FR",
                },
            ),
            201,
        )
        if index != 5:
            ok(world.admin.put("identity", f"/v1/orgs/{org['id']}/caretakers/{staff['id']}"), 204)
    # Not a caretaker of number 05: the policy leaves it out.
    api = world.admin.login(staff["email"])
    page = ok(api.get("identity", "/v1/customers", params={"q": prefix}))
    assert len(page["items"]) == 20 and page["next_cursor"]
    rest = ok(
        api.get("identity", "/v1/customers", params={"q": prefix, "cursor": page["next_cursor"]})
    )
    names = [c["name"] for c in page["items"] + rest["items"]]
    assert rest["next_cursor"] is None
    assert names == sorted(names) and len(names) == 22 and f"{prefix} 05" not in names
    assert api.get("identity", "/v1/customers", params={"limit": 21}).status_code == 422
    by_contract = ok(
        api.get("identity", "/v1/customers", params={"q": page["items"][0]["contract_number"]})
    )
    assert [c["id"] for c in by_contract["items"]] == [page["items"][0]["id"]]
    by_country = ok(api.get("identity", "/v1/customers", params={"q": "at"}))["items"]
    assert by_country and all(
        c["country"] == "AT" or "at" in (c["name"] + c["contract_number"]).lower()
        for c in by_country
    )
    assert world.org_a["id"] not in {
        c["id"] for c in ok(api.get("identity", "/v1/customers"))["items"]
    }
    # The platform admin may act for every active customer, the seller never appears.
    admin_page = ok(world.admin.get("identity", "/v1/customers", params={"q": prefix}))
    assert len(admin_page["items"]) == 20
    assert api.get("identity", "/v1/customers", params={"cursor": "garbage!"}).status_code == 422


def test_a_deactivated_users_tokens_are_refused_everywhere_even_after_reactivation(
    world: World,
) -> None:
    buyer = world.login(world.buyer_a)
    ok(buyer.get("cart", "/v1/cart"))
    ok(world.admin.patch("identity", f"/v1/users/{world.buyer_a['id']}", json={"active": False}))

    for service, path in [*SERVICES_TO_CHECK, ("identity", "/v1/me")]:

        def refused(s: str = service, p: str = path) -> httpx.Response | None:
            response = buyer.get(s, p)
            return response if response.status_code == 401 else None

        response = wait_until(refused, what=f"{service} refuses the deactivated user's token")
        assert response.json()["detail"] == "this user is deactivated"

    ok(world.admin.patch("identity", f"/v1/users/{world.buyer_a['id']}", json={"active": True}))
    fresh = world.login(world.buyer_a)
    wait_until(
        lambda: fresh.get("cart", "/v1/cart").status_code == 200,
        what="a token issued after the reactivation accepted",
    )
    # The deactivation raised the user's generation: tokens from before it stay refused.
    assert buyer.get("cart", "/v1/cart").status_code == 401


def test_acting_session_list_refuses_a_forged_cursor(world: World) -> None:
    import base64
    import json

    def forge(started: str) -> str:
        return base64.urlsafe_b64encode(json.dumps([started, "x"]).encode()).decode()

    for cursor in [forge("not-a-time"), forge("2026-01-01T00:00:00"), "%%%"]:
        response = world.admin.get(
            "identity", f"/v1/orgs/{world.org_a['id']}/acting-sessions", params={"cursor": cursor}
        )
        assert response.status_code == 422, response.text
        assert response.json()["detail"] == "cursor is not one this service issued"
