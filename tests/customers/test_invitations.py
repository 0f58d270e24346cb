"""Invitations end to end: mailed through the SMTP sink, accepted once, duplicates refused,
resent, revoked, never while acting; expiry with the validity moved through a setting."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from onbehalf.cli import app as cli
from onbehalf.stack import Stack, start_stack
from tests.conftest import ADMIN_EMAIL
from tests.customers.mailbox import invitation_token, mails, wait_for_mail
from tests.support import PASSWORD, Api, World, ok, unique

NEW_PASSWORD = "a-Long-enough-passphrase-42"


def _invite(api: Api, org: dict[str, Any], email: str, roles: list[str]) -> httpx.Response:
    body = {"email": email, "name": "New Colleague", "roles": roles}
    return api.post("identity", f"/v1/orgs/{org['id']}/invitations", json=body)


def test_a_customer_admin_invites_and_the_contact_accepts(world: World, stack: Stack) -> None:
    admin_a = world.login(world.customer_user(world.org_a, ["admin"]))
    email = unique("invitee") + "@Example.test"
    invitation = ok(_invite(admin_a, world.org_a, email, ["buyer"]), 201)
    assert invitation["status"] == "pending"
    assert invitation["email"] == email.lower()
    sent, expires = (datetime.fromisoformat(invitation[k]) for k in ("sent_at", "expires_at"))
    assert expires - sent == timedelta(days=7)
    mail = wait_for_mail(stack, email, "invitation")[0]
    assert "New Colleague" in mail["body"] and world.org_a["name"] in mail["subject"]
    token = invitation_token(mail)
    assert token not in str(
        ok(admin_a.get("identity", f"/v1/orgs/{world.org_a['id']}/invitations"))
    )

    # The same address again, in any case, and an address a user has: a clear 409.
    again = _invite(admin_a, world.org_a, email.upper(), ["viewer"])
    assert again.status_code == 409 and "open invitation" in again.json()["detail"]
    taken = _invite(admin_a, world.org_a, world.buyer_a["email"], ["buyer"])
    assert taken.status_code == 409 and "already has an account" in taken.json()["detail"]

    pending = ok(
        admin_a.get(
            "identity", f"/v1/orgs/{world.org_a['id']}/invitations", params={"status": "pending"}
        )
    )["items"]
    assert [i["email"] for i in pending] == [email.lower()]

    anonymous = Api(stack=stack, client=admin_a.client)
    weak = anonymous.post("identity", f"/v1/invitations/{token}/accept", json={"password": "x"})
    assert weak.status_code == 422
    accepted = ok(
        anonymous.post(
            "identity", f"/v1/invitations/{token}/accept", json={"password": NEW_PASSWORD}
        )
    )
    me = ok(anonymous.with_token(accepted["access_token"]).get("identity", "/v1/me"))
    assert me["email"] == email.lower() and me["org_id"] == world.org_a["id"]
    assert me["roles"] == ["buyer"] and me["kind"] == "customer"
    anonymous.login(email, NEW_PASSWORD)  # a real account with the chosen password

    # Single use.
    twice = anonymous.post(
        "identity", f"/v1/invitations/{token}/accept", json={"password": NEW_PASSWORD}
    )
    assert twice.status_code == 410, twice.text
    listed = ok(
        admin_a.get(
            "identity", f"/v1/orgs/{world.org_a['id']}/invitations", params={"status": "accepted"}
        )
    )["items"]
    assert [i["user_id"] for i in listed] == [me["id"]]


def test_bulk_invitations_answer_each_item(world: World) -> None:
    fresh = unique("bulk") + "@example.test"
    items = [
        {"email": fresh, "name": "One", "roles": ["viewer"]},
        {"email": world.buyer_a["email"], "name": "Taken", "roles": ["buyer"]},
        {"email": unique("bad") + "@example.test", "name": "Bad", "roles": ["emperor"]},
        {"email": unique("two") + "@example.test", "name": "Two", "roles": ["admin", "buyer"]},
        {"email": fresh.upper(), "name": "Twice", "roles": ["viewer"]},
    ]
    answer = ok(
        world.admin.post(
            "identity", f"/v1/orgs/{world.org_a['id']}/invitations", json={"items": items}
        )
    )["items"]
    assert [item["status"] for item in answer] == [
        "invited",
        "refused",
        "refused",
        "refused",
        "refused",
    ]
    assert "already has an account" in answer[1]["detail"]
    assert "unknown customer roles" in answer[2]["detail"]
    assert "an admin has no other role" in answer[3]["detail"]


def test_resend_replaces_the_token_and_revoke_closes_it(world: World, stack: Stack) -> None:
    email = unique("resend") + "@example.test"
    invitation = ok(_invite(world.admin, world.org_a, email, ["viewer"]), 201)
    first = invitation_token(wait_for_mail(stack, email, "invitation")[0])
    path = f"/v1/orgs/{world.org_a['id']}/invitations/{invitation['id']}"
    resent = ok(world.admin.post("identity", path + "/resend"))
    assert resent["sends"] == 2 and resent["expires_at"] >= invitation["expires_at"]
    tokens = {invitation_token(m) for m in wait_for_mail(stack, email, "invitation", count=2)}
    second = (tokens - {first}).pop()
    anonymous = world.admin.with_token("")
    body = {"password": NEW_PASSWORD}
    assert (
        anonymous.post("identity", f"/v1/invitations/{first}/accept", json=body).status_code == 404
    )
    assert ok(world.admin.delete("identity", path))["status"] == "revoked"
    revoked = anonymous.post("identity", f"/v1/invitations/{second}/accept", json=body)
    assert revoked.status_code == 410 and "revoked" in revoked.json()["detail"]
    # A revoked invitation frees the address.
    ok(_invite(world.admin, world.org_a, email, ["viewer"]), 201)


def test_no_invitation_while_acting_nor_by_a_buyer(world: World) -> None:
    rep = world.login(world.rep)
    acting, _ = world.act_as(rep, world.org_a)
    refused = _invite(acting, world.org_a, unique("x") + "@example.test", ["buyer"])
    assert refused.status_code == 403
    assert refused.json()["reason"] == (
        "the customer's invitations and notices are never managed while acting"
    )
    listing = acting.get("identity", f"/v1/orgs/{world.org_a['id']}/invitations")
    assert listing.status_code == 403
    buyer = world.login(world.buyer_a)
    assert _invite(buyer, world.org_a, unique("y") + "@example.test", ["buyer"]).status_code == 403
    other_admin = world.login(world.customer_user(world.org_b, ["admin"]))
    cross = _invite(other_admin, world.org_a, unique("z") + "@example.test", ["buyer"])
    assert cross.status_code == 403
    assert cross.json()["reason"] == "this is another customer organisation"


def test_the_invitation_text_is_a_template_an_admin_changes(world: World, stack: Stack) -> None:
    path = "/v1/mail-templates/invitation"
    ok(
        world.admin.put(
            "identity",
            path,
            json={"subject": "Welcome to $org_name", "body": "Hi $name, click $accept_url"},
        )
    )
    try:
        email = unique("templated") + "@example.test"
        ok(_invite(world.admin, world.org_a, email, ["buyer"]), 201)
        mail = wait_for_mail(stack, email, "invitation")[0]
        assert mail["subject"] == f"Welcome to {world.org_a['name']}"
        assert mail["body"].startswith("Hi New Colleague, click http")
        buyer = world.login(world.buyer_a)
        assert buyer.put("identity", path, json={"subject": "x"}).status_code == 403
    finally:
        ok(world.admin.put("identity", path, json={}))


def test_onbehalf_mail_lists_and_shows_the_sink(world: World, stack: Stack) -> None:
    email = unique("cli") + "@example.test"
    ok(_invite(world.admin, world.org_a, email, ["buyer"]), 201)
    mail = wait_for_mail(stack, email, "invitation")[0]
    runner = CliRunner()
    listed = runner.invoke(cli, ["mail", "list", "--data-dir", str(stack.workdir), "--to", email])
    assert listed.exit_code == 0 and mail["id"][:8] in listed.output
    shown = runner.invoke(cli, ["mail", "show", mail["id"], "--data-dir", str(stack.workdir)])
    assert shown.exit_code == 0 and "/accept" in shown.output


# ---------------------------------------------------------------- seven days later


@pytest.fixture(scope="module")
def expired_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, str]]:
    """A system in which every invitation is already past its validity: the setting that
    stands for "seven days have passed" (no sleeping), and a digest due at once."""
    password = secrets.token_urlsafe(16)
    running = start_stack(
        tmp_path_factory.mktemp("expired"),
        admin_email=ADMIN_EMAIL,
        admin_password=password,
        extra_env={
            "ONBEHALF_INVITATION_VALID_DAYS": "0",
            "ONBEHALF_ACTING_DIGEST_PERIOD_SECONDS": "0",
            "ONBEHALF_ACTING_DIGEST_CHECK_SECONDS": "0.2",
        },
    )
    yield running, password
    running.stop()


def test_after_seven_days_the_invitation_is_gone_and_the_inviter_told(
    expired_stack: tuple[Stack, str], http: httpx.Client
) -> None:
    stack, password = expired_stack
    admin = Api(stack=stack, client=http).login(ADMIN_EMAIL, password)
    org = ok(
        admin.post(
            "identity",
            "/v1/orgs",
            json={"name": unique("Late"), "contract_number": unique("C"), "country": "FR"},
        ),
        201,
    )
    inviter_email = unique("inviter") + "@example.test"
    ok(
        admin.post(
            "identity",
            "/v1/users",
            json={
                "email": inviter_email,
                "name": "Ina Inviter",
                "password": PASSWORD,
                "kind": "customer",
                "org_id": org["id"],
                "roles": ["admin"],
            },
        ),
        201,
    )
    inviter = admin.login(inviter_email)
    email = unique("late") + "@example.test"
    invitation = ok(_invite(inviter, org, email, ["buyer"]), 201)
    token = invitation_token(wait_for_mail(stack, email, "invitation")[0])
    late = admin.with_token("").post(
        "identity", f"/v1/invitations/{token}/accept", json={"password": NEW_PASSWORD}
    )
    assert late.status_code == 410, late.text
    assert late.json()["detail"].startswith("this invitation expired on 20")
    assert invitation["expires_at"][:10] in late.json()["detail"]
    expired = ok(
        inviter.get("identity", f"/v1/orgs/{org['id']}/invitations", params={"status": "expired"})
    )["items"]
    assert [i["id"] for i in expired] == [invitation["id"]]
    told = wait_for_mail(stack, inviter_email, "invitation_expired")[0]
    assert email in told["body"] and "expired" in told["subject"]
    # The address is open again: a new invitation may go out.
    ok(_invite(inviter, org, email, ["buyer"]), 201)
    assert mails(stack, email, "invitation")


def test_a_daily_digest_lists_the_sessions(
    expired_stack: tuple[Stack, str], http: httpx.Client
) -> None:
    stack, password = expired_stack
    admin = Api(stack=stack, client=http).login(ADMIN_EMAIL, password)
    world = World(
        admin=admin, org_a={}, org_b={}, rep={}, buyer_a={}, buyer_b={}, viewer_a={}, skus=[]
    )
    org = ok(
        admin.post(
            "identity",
            "/v1/orgs",
            json={"name": unique("Digest"), "contract_number": unique("C"), "country": "FR"},
        ),
        201,
    )
    customer_admin = world.customer_user(org, ["admin"])
    ok(
        admin.login(customer_admin["email"]).put(
            "identity",
            f"/v1/orgs/{org['id']}/acting-notices",
            json={"acting_notices": "daily_digest"},
        )
    )
    rep = world.staff(
        roles=["sales_rep"], permissions=["place_orders_as_customer"], caretaker_of=[org]
    )
    _, started = world.act_as(admin.login(rep["email"]), org, mode="view")
    digest = wait_for_mail(stack, customer_admin["email"], "acting_digest")[0]
    assert rep["name"] in digest["body"] and "view mode" in digest["body"]
    assert not mails(stack, customer_admin["email"], "acting_notice")
    assert started["session_id"]
