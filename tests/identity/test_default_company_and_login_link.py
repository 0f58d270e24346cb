"""A staff member's default company (an acting session at login while the policy allows it)
and personal login links (opt-in, hashed, replaced, revocable, audited with the address)."""

from __future__ import annotations

from typing import Any

from tests.cart.people import reviewer
from tests.support import Api, World, audit_events, ok, wait_until


def _login(api: Api, email: str) -> dict[str, Any]:
    response = api.client.post(
        api.stack.url("identity") + "/v1/auth/token",
        json={"email": email, "password": "test-password-1"},
    )
    return dict(ok(response))


def test_the_default_company_gives_an_acting_session_at_login_until_the_link_goes(
    world: World,
) -> None:
    rep = world.login(world.rep)
    assert ok(rep.get("identity", "/v1/me/preferences"))["after_login"] == "company_selection"
    body = {"default_customer_org_id": world.org_a["id"], "after_login": "default_customer"}
    saved = ok(rep.put("identity", "/v1/me/preferences", json=body))
    assert saved == {
        "default_customer_org_id": world.org_a["id"],
        "after_login": "default_customer",
        "mode": "full",
        "login_link": False,
    }

    logged_in = _login(rep, world.rep["email"])
    assert logged_in["access_token"]
    started = logged_in["after_login"]["acting_as"]
    assert logged_in["after_login"]["reason"] is None
    assert started["subject"]["org_id"] == world.org_a["id"] and started["mode"] == "full"
    acting = rep.with_token(started["access_token"])
    assert ok(acting.get("cart", "/v1/cart"))["org_id"] == world.org_a["id"]
    # The staff token is the staff member's own, beside the session.
    me = ok(rep.with_token(logged_in["access_token"]).get("identity", "/v1/me"))
    assert me["id"] == world.rep["id"] and me["acting_as"] is None
    # An acting session has no preferences to change.
    refused = acting.put(
        "identity", "/v1/me/preferences", json={"after_login": "company_selection"}
    )
    assert refused.status_code == 403
    assert refused.json()["reason"] == (
        "preferences are never changed while acting on behalf of a customer"
    )

    path = f"/v1/orgs/{world.org_a['id']}/caretakers/{world.rep['id']}"
    ok(world.admin.delete("identity", path), 204)
    after = _login(rep, world.rep["email"])
    assert after["access_token"] and after["after_login"]["acting_as"] is None
    assert after["after_login"]["customer_org_id"] == world.org_a["id"]
    assert after["after_login"]["reason"]

    # Customer users have no default customer; unknown organisations are a clear 422.
    buyer = world.login(world.buyer_a)
    wrong = buyer.put("identity", "/v1/me/preferences", json={"after_login": "default_customer"})
    assert wrong.status_code == 422 and "only staff" in wrong.json()["detail"]
    assert (
        rep.put(
            "identity", "/v1/me/preferences", json={"default_customer_org_id": "nope"}
        ).status_code
        == 422
    )


def test_a_personal_login_link_works_is_replaced_and_refused_after_revocation(
    world: World,
) -> None:
    buyer = world.login(world.buyer_a)
    not_yet = buyer.post("identity", "/v1/me/login-link")
    assert not_yet.status_code == 403 and "opt in first" in not_yet.json()["reason"]
    ok(buyer.put("identity", "/v1/me/preferences", json={"login_link": True}))

    first = ok(buyer.post("identity", "/v1/me/login-link"), 201)
    assert first["url"].endswith("#" + first["token"]) and len(first["token"]) >= 40

    def use(token: str) -> Any:
        return buyer.client.post(
            buyer.stack.url("identity") + "/v1/auth/login-link", json={"token": token}
        )

    logged_in = ok(use(first["token"]))
    me = ok(buyer.with_token(logged_in["access_token"]).get("identity", "/v1/me"))
    assert me["id"] == world.buyer_a["id"]

    second = ok(buyer.post("identity", "/v1/me/login-link"), 201)
    assert use(first["token"]).status_code == 401  # replaced
    ok(use(second["token"]))
    ok(buyer.delete("identity", "/v1/me/login-link"), 204)
    revoked = use(second["token"])
    assert revoked.status_code == 401 and "not valid" in revoked.json()["detail"]

    # Staff who can act for customers do not get one (the platform's default).
    rep = world.login(world.rep)
    ok(rep.put("identity", "/v1/me/preferences", json={"login_link": True}))
    refused = rep.post("identity", "/v1/me/login-link")
    assert refused.status_code == 403
    assert refused.json()["reason"] == "staff who can act for customers log in with their password"

    audit = reviewer(world)
    uses = wait_until(
        lambda: [
            event
            for event in audit_events(
                audit, actor_id=world.buyer_a["id"], type="com.onbehalf.identity.login_link.used"
            )
            if event["data"]["refused"] is None
        ],
        what="the link's uses audited",
    )
    assert len(uses) >= 1 and uses[0]["data"]["address"] == "127.0.0.1"
    wait_until(
        lambda: [
            event
            for event in audit_events(audit, type="com.onbehalf.identity.login_link.used")
            if event["data"]["refused"] == "unknown_link"
        ],
        what="the refused uses audited too",
    )
