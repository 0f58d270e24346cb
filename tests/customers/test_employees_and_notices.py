"""A customer admin manages the organisation's employees (never while acting), and hears by
mail when staff act for the organisation, as the organisation chose."""

from __future__ import annotations

import time

from onbehalf.stack import Stack
from tests.customers.mailbox import mails, wait_for_mail
from tests.support import PASSWORD, World, ok, wait_until

NEVER_WHILE_ACTING = "the customer's users, consent and sessions are never managed while acting"


def test_a_customer_admin_lists_changes_and_deactivates_employees(world: World) -> None:
    admin_a = world.login(world.customer_user(world.org_a, ["admin"]))
    path = f"/v1/orgs/{world.org_a['id']}/employees"
    listed = {e["id"]: e for e in ok(admin_a.get("identity", path))["items"]}
    assert listed[world.buyer_a["id"]]["role"] == "buyer"
    assert listed[world.buyer_a["id"]]["active"] is True
    assert world.buyer_b["id"] not in listed

    viewer = ok(
        admin_a.patch("identity", f"{path}/{world.viewer_a['id']}", json={"roles": ["buyer"]})
    )
    assert viewer["roles"] == ["buyer"]
    mixed = admin_a.patch(
        "identity", f"{path}/{world.viewer_a['id']}", json={"roles": ["admin", "buyer"]}
    )
    assert mixed.status_code == 422 and "an admin has no other role" in mixed.json()["detail"]

    buyer = world.login(world.buyer_a)
    ok(buyer.get("cart", "/v1/cart"))
    ok(admin_a.patch("identity", f"{path}/{world.buyer_a['id']}", json={"active": False}))
    since = time.monotonic()
    wait_until(
        lambda: buyer.get("cart", "/v1/cart").status_code == 401,
        timeout=1.0,
        what="the deactivated employee's token is refused by cart within a second",
    )
    assert time.monotonic() - since <= 1.0
    login = buyer.client.post(
        world.admin.stack.url("identity") + "/v1/auth/token",
        json={"email": world.buyer_a["email"], "password": PASSWORD},
    )
    assert login.status_code in (401, 403), login.text
    inactive = ok(admin_a.get("identity", path, params={"active": "false"}))["items"]
    assert [e["id"] for e in inactive] == [world.buyer_a["id"]]

    ok(admin_a.patch("identity", f"{path}/{world.buyer_a['id']}", json={"active": True}))
    ok(world.login(world.buyer_a).get("cart", "/v1/cart"))

    # Nobody locks the organisation out of itself.
    me = ok(admin_a.get("identity", "/v1/me"))
    last = admin_a.patch("identity", f"{path}/{me['id']}", json={"active": False})
    assert last.status_code == 409 and last.json()["reason"] == "last_admin"


def test_employees_are_never_managed_while_acting_nor_by_a_buyer(world: World) -> None:
    path = f"/v1/orgs/{world.org_a['id']}/employees"
    acting, _ = world.act_as(world.login(world.rep), world.org_a)
    listing = acting.get("identity", path)
    assert listing.status_code == 403 and listing.json()["reason"] == NEVER_WHILE_ACTING
    change = acting.patch("identity", f"{path}/{world.buyer_a['id']}", json={"active": False})
    assert change.status_code == 403 and change.json()["reason"] == NEVER_WHILE_ACTING
    buyer = world.login(world.buyer_a)
    assert buyer.get("identity", path).status_code == 403
    assert ok(world.login(world.buyer_a).get("cart", "/v1/cart"))  # still active


def test_the_customer_admin_is_mailed_when_staff_act(world: World, stack: Stack) -> None:
    customer_admin = world.customer_user(world.org_a, ["admin"])
    rep = world.login(world.rep)
    _, started = world.act_as(rep, world.org_a, mode="full")
    mail = wait_for_mail(stack, customer_admin["email"], "acting_notice")[0]
    assert world.rep["name"] in mail["subject"] and world.org_a["name"] in mail["subject"]
    assert "full acting session" in mail["body"] and started["session_id"] in mail["body"]
    assert f"/v1/orgs/{world.org_a['id']}/consent" in mail["body"]
    assert "allow_assistance" in mail["body"]

    # The organisation chooses not to hear; then to hear again.
    settings = world.login(customer_admin)
    notices = f"/v1/orgs/{world.org_a['id']}/acting-notices"
    assert ok(settings.get("identity", notices))["acting_notices"] == "every_session"
    ok(settings.put("identity", notices, json={"acting_notices": "none"}))
    _, silent = world.act_as(rep, world.org_a, mode="view")
    ok(settings.put("identity", notices, json={"acting_notices": "every_session"}))
    _, loud = world.act_as(rep, world.org_a, mode="view")
    told = wait_for_mail(stack, customer_admin["email"], "acting_notice", count=2)
    bodies = " ".join(m["body"] for m in told)
    assert loud["session_id"] in bodies and silent["session_id"] not in bodies
    bad = settings.put("identity", notices, json={"acting_notices": "sometimes"})
    assert bad.status_code == 422

    # Staff acting for the customer cannot silence the notices about themselves.
    acting, _ = world.act_as(rep, world.org_a)
    muted = acting.put("identity", notices, json={"acting_notices": "none"})
    assert muted.status_code == 403
    assert len(mails(stack, customer_admin["email"], "acting_notice")) >= 2
