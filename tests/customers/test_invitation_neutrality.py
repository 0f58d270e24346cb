"""What an invitation tells a customer's admin (docs/decisions.md): a clear 409 for their own
organisation's users and invitations, and for an address that is someone else's the answer any
invitation gets, while the invitation is never sent and the address's owner is told."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from onbehalf.stack import Stack
from tests.conftest import ADMIN_EMAIL
from tests.customers.mailbox import invitation_token, mails, wait_for_mail
from tests.support import Api, World, ok, unique

NEW_PASSWORD = "a-Long-enough-passphrase-42"


def _invite(api: Api, org: dict[str, Any], email: str) -> httpx.Response:
    body = {"email": email, "name": "New Colleague", "roles": ["buyer"]}
    return api.post("identity", f"/v1/orgs/{org['id']}/invitations", json=body)


def _shape(answer: httpx.Response) -> tuple[int, list[str], dict[str, Any]]:
    """What an admin can compare between two answers: status, fields, and every value that
    does not name the address or the invitation itself."""
    body = answer.json()
    sent, expires = (datetime.fromisoformat(body[k]) for k in ("sent_at", "expires_at"))
    same = {
        k: body[k]
        for k in ("org_id", "name", "roles", "status", "invited_by", "sends", "closed_at")
    }
    same["user_id"] = body["user_id"]
    same["valid_for"] = expires - sent
    return answer.status_code, sorted(body), same


def _listed(api: Api, org: dict[str, Any], status: str = "pending") -> dict[str, str]:
    items = ok(api.get("identity", f"/v1/orgs/{org['id']}/invitations", params={"status": status}))[
        "items"
    ]
    return {item["email"]: item["id"] for item in items}


def test_another_organisations_user_or_staff_is_invited_like_anyone(
    world: World, stack: Stack
) -> None:
    admin_b = world.login(world.customer_user(world.org_b, ["admin"]))
    fresh = _invite(admin_b, world.org_b, unique("fresh") + "@example.test")
    elsewhere = _invite(admin_b, world.org_b, world.buyer_a["email"].upper())
    staff = _invite(admin_b, world.org_b, world.rep["email"])
    assert fresh.status_code == 201, fresh.text
    assert _shape(elsewhere) == _shape(fresh) == _shape(staff)
    assert elsewhere.json()["email"] == world.buyer_a["email"].lower()

    pending = _listed(admin_b, world.org_b)
    assert {world.buyer_a["email"], world.rep["email"]} <= set(pending)

    # The owners hear that someone tried; no invitation (no token) ever reaches them.
    told = wait_for_mail(stack, world.buyer_a["email"], "invitation_elsewhere")[0]
    assert world.org_b["name"] in told["subject"] and "/accept" not in told["body"]
    wait_for_mail(stack, world.rep["email"], "invitation_elsewhere")
    assert not mails(stack, world.buyer_a["email"], "invitation")
    assert not mails(stack, world.rep["email"], "invitation")

    # A second invitation within the organisation: the clear 409, as for any address.
    again = _invite(admin_b, world.org_b, world.buyer_a["email"])
    assert again.status_code == 409 and again.json()["reason"] == "already_invited"

    # Resent and revoked like any invitation, and still never sent.
    path = f"/v1/orgs/{world.org_b['id']}/invitations/{pending[world.buyer_a['email']]}"
    resent = ok(admin_b.post("identity", path + "/resend"))
    assert resent["status"] == "pending" and resent["sends"] == 2
    assert ok(admin_b.delete("identity", path))["status"] == "revoked"
    assert not mails(stack, world.buyer_a["email"], "invitation")

    # The owner's account is untouched.
    me = ok(world.login(world.buyer_a).get("identity", "/v1/me"))
    assert me["org_id"] == world.org_a["id"]

    # A platform admin, who may list every user anyway, is told the truth.
    told_admin = _invite(world.admin, world.org_b, world.buyer_a["email"])
    assert told_admin.status_code == 409 and told_admin.json()["reason"] == "email_taken"
    assert _invite(world.admin, world.org_b, ADMIN_EMAIL).status_code == 409


def test_another_organisations_open_invitation_is_not_blocked_nor_revealed(
    world: World, stack: Stack
) -> None:
    admin_a = world.login(world.customer_user(world.org_a, ["admin"]))
    admin_b = world.login(world.customer_user(world.org_b, ["admin"]))
    email = unique("wanted") + "@example.test"
    ok(_invite(admin_a, world.org_a, email), 201)
    token = invitation_token(wait_for_mail(stack, email, "invitation")[0])

    refused = _invite(world.admin, world.org_b, email)
    assert refused.status_code == 409 and refused.json()["reason"] == "already_invited"
    withheld = _invite(admin_b, world.org_b, email)
    assert withheld.status_code == 201 and withheld.json()["status"] == "pending"
    assert email in _listed(admin_b, world.org_b)
    wait_for_mail(stack, email, "invitation_elsewhere")

    # The contact accepts the invitation that was sent: they become A's.
    anonymous = world.admin.with_token("")
    accepted = ok(
        anonymous.post(
            "identity", f"/v1/invitations/{token}/accept", json={"password": NEW_PASSWORD}
        )
    )
    me = ok(anonymous.with_token(accepted["access_token"]).get("identity", "/v1/me"))
    assert me["org_id"] == world.org_a["id"]
    # B's invitation stays pending to B; resending it sends nothing either.
    path = f"/v1/orgs/{world.org_b['id']}/invitations/{withheld.json()['id']}"
    assert ok(admin_b.post("identity", path + "/resend"))["status"] == "pending"
    assert email in _listed(admin_b, world.org_b)
    assert len(mails(stack, email, "invitation")) == 1
    # A's own admin is told plainly: the address is one of A's users now.
    taken = _invite(admin_a, world.org_a, email)
    assert taken.status_code == 409 and taken.json()["reason"] == "email_taken"


def test_bulk_invitations_follow_the_same_rule_per_item(world: World, stack: Stack) -> None:
    admin_b = world.login(world.customer_user(world.org_b, ["admin"]))
    items = [
        {"email": unique("bulk") + "@example.test", "name": "One", "roles": ["viewer"]},
        {"email": world.buyer_a["email"], "name": "Elsewhere", "roles": ["buyer"]},
        {"email": world.buyer_b["email"], "name": "Ours", "roles": ["buyer"]},
        {"email": world.rep["email"], "name": "Staff", "roles": ["buyer"]},
    ]
    path = f"/v1/orgs/{world.org_b['id']}/invitations"
    answer = ok(admin_b.post("identity", path, json={"items": items}))["items"]
    assert [item["status"] for item in answer] == ["invited", "invited", "refused", "invited"]
    assert answer[2]["status_code"] == 409 and answer[2]["reason"] == "email_taken"
    shapes = [
        (sorted(item["invitation"]), item["invitation"]["status"])
        for item in answer
        if item["status"] == "invited"
    ]
    assert len(set(map(repr, shapes))) == 1
    wait_for_mail(stack, world.buyer_a["email"], "invitation_elsewhere")

    by_platform = ok(world.admin.post("identity", path, json={"items": items[1:2]}))["items"]
    assert by_platform[0]["status"] == "refused" and by_platform[0]["reason"] == "email_taken"
