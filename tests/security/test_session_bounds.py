"""Sessions are bounded: switching never extends an acting session, none outlives its login
session, logout and a password change end sessions everywhere (issue 9)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import jwt

from tests.support import Api, World, audit_events, ok, wait_until

SERVICES = [("cart", "/v1/cart"), ("orders", "/v1/orders"), ("catalog", "/v1/products")]
NEW_PASSWORD = "Kettle-orbit-8841-zebra"


def claims(api: Api) -> dict[str, Any]:
    """The token's claims as issued (the signature is the services' business, not this test's)."""
    assert api.token
    return dict(jwt.decode(api.token, options={"verify_signature": False}))


def assert_refused_everywhere(api: Api, *, what: str) -> None:
    for service, path in [*SERVICES, ("identity", "/v1/me")]:

        def refused(s: str = service, p: str = path) -> httpx.Response | None:
            response = api.get(s, p)
            return response if response.status_code == 401 else None

        wait_until(refused, what=f"{service} refuses {what}")


def test_switching_to_the_same_customer_keeps_the_first_expiry(world: World) -> None:
    rep = world.login(world.rep)
    acting, started = world.act_as(rep, world.org_a)
    login_exp = claims(rep)["exp"]
    first_expiry = datetime.fromisoformat(started["expires_at"])
    # Never beyond the login session it was started from.
    assert first_expiry.timestamp() <= login_exp
    assert claims(acting)["exp"] <= login_exp
    assert claims(acting)["lsid"] == claims(rep)["lsid"]

    for _ in range(3):
        switched = ok(
            acting.post(
                "identity",
                "/v1/acting-as/switch",
                json={"customer_org_id": world.org_a["id"], "mode": "full"},
            ),
            201,
        )
        acting = rep.with_token(switched["access_token"])
        assert datetime.fromisoformat(switched["expires_at"]) == first_expiry
        assert claims(acting)["exp"] == int(first_expiry.timestamp())
        assert claims(acting)["lsid"] == claims(rep)["lsid"]
    ok(acting.get("cart", "/v1/cart"))


def test_logout_ends_the_login_session_and_its_acting_sessions(world: World) -> None:
    rep = world.login(world.rep)
    other_device = world.login(world.rep)
    acting, started = world.act_as(rep, world.org_a)
    ok(acting.get("cart", "/v1/cart"))

    assert rep.post("identity", "/v1/auth/logout").status_code == 204

    assert_refused_everywhere(rep, what="the logged-out login token")
    assert_refused_everywhere(acting, what="an acting token of the logged-out session")
    # Another login session of the same person goes on.
    ok(other_device.get("identity", "/v1/me"))
    other_acting, _ = world.act_as(other_device, world.org_a)
    ok(other_acting.get("cart", "/v1/cart"))

    sessions = ok(world.admin.get("identity", f"/v1/orgs/{world.org_a['id']}/acting-sessions"))
    [record] = [s for s in sessions["items"] if s["session_id"] == started["session_id"]]
    assert record["end_reason"] == "logged_out"

    lsid = claims(rep)["lsid"]

    def audited() -> list[dict[str, Any]]:
        return [
            e
            for e in audit_events(
                world.admin,
                actor_id=world.rep["id"],
                type="com.onbehalf.identity.login_session.ended",
            )
            if e["data"]["login_session_id"] == lsid
        ]

    [event] = wait_until(audited, what="the logout audited")
    assert event["data"]["acting_sessions_ended"] == 1


def test_logout_from_an_acting_token_ends_its_login_session(world: World) -> None:
    rep = world.login(world.rep)
    acting, _ = world.act_as(rep, world.org_a)
    assert acting.post("identity", "/v1/auth/logout").status_code == 204
    assert_refused_everywhere(acting, what="the acting token that logged out")
    assert_refused_everywhere(rep, what="the login token the acting session came from")


def test_a_password_change_ends_every_other_session(world: World) -> None:
    buyer = world.login(world.buyer_a)
    other_device = world.login(world.buyer_a)
    ok(other_device.get("cart", "/v1/cart"))

    renewed = ok(
        buyer.post(
            "identity",
            "/v1/me/password",
            json={"current_password": "test-password-1", "new_password": NEW_PASSWORD},
        )
    )
    current = buyer.with_token(renewed["access_token"])
    # The same login session goes on with a token of the new generation and the same expiry.
    assert claims(current)["lsid"] == claims(buyer)["lsid"]
    assert claims(current)["exp"] == claims(buyer)["exp"]

    assert_refused_everywhere(other_device, what="another session after a password change")
    assert_refused_everywhere(buyer, what="the token the password was changed with")
    for service, path in SERVICES:
        ok(current.get(service, path))
    world.admin.login(world.buyer_a["email"], NEW_PASSWORD)

    def audited() -> list[dict[str, Any]]:
        return audit_events(
            world.admin,
            actor_id=world.buyer_a["id"],
            type="com.onbehalf.identity.user.password_changed",
        )

    wait_until(audited, what="the password change audited")


def test_a_staff_password_change_ends_their_acting_sessions(world: World) -> None:
    rep = world.login(world.rep)
    other_device = world.login(world.rep)
    acting, started = world.act_as(other_device, world.org_a)

    ok(
        rep.post(
            "identity",
            "/v1/me/password",
            json={"current_password": "test-password-1", "new_password": NEW_PASSWORD},
        )
    )

    assert_refused_everywhere(
        acting, what="an acting session after its staff member's password change"
    )
    sessions = ok(world.admin.get("identity", f"/v1/orgs/{world.org_a['id']}/acting-sessions"))
    [record] = [s for s in sessions["items"] if s["session_id"] == started["session_id"]]
    assert record["end_reason"] == "revoked"
    assert record["end_detail"] == "the staff member's password changed"
