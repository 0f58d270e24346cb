"""Login resists guessing: throttling, audited failures, password policy, no address oracle."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.support import PASSWORD, Api, World, audit_events, ok, unique, wait_until


def _login(client: httpx.Client, api: Api, email: str, password: str) -> httpx.Response:
    return client.post(
        api.stack.url("identity") + "/v1/auth/token", json={"email": email, "password": password}
    )


@pytest.fixture
def other_address() -> Iterator[httpx.Client]:
    """A client on another loopback address, so its failures do not count against 127.0.0.1
    (every other test logs in from there)."""
    transport = httpx.HTTPTransport(local_address="127.0.0.3")
    with httpx.Client(transport=transport, timeout=15.0) as client:
        yield client


def test_31st_wrong_password_is_refused_with_429_even_when_right(world: World) -> None:
    victim = world.customer_user(world.org_a, ["buyer"])
    answers = [
        _login(world.admin.client, world.admin, victim["email"], f"wrong-guess-{n}")
        for n in range(30)
    ]
    assert [a.status_code for a in answers[:10]] == [401] * 10
    assert {a.status_code for a in answers[10:]} == {429}
    right = _login(world.admin.client, world.admin, victim["email"], PASSWORD)
    assert right.status_code == 429, right.text
    assert 1 <= int(right.headers["Retry-After"]) <= 15 * 60
    body = right.json()
    assert body["reason"] == "login_throttled" and "account" in body["detail"]
    assert body["retry_after"] == int(right.headers["Retry-After"])

    def audited(kind: str) -> list[dict[str, Any]]:
        return audit_events(world.admin, type=kind, actor_id=victim["id"])

    throttled = wait_until(
        lambda: audited("com.onbehalf.identity.login.throttled"), what="throttle audited"
    )
    assert throttled[0]["data"]["scope"] == "account"
    assert throttled[0]["subject"]["org_id"] == world.org_a["id"]
    failed = wait_until(lambda: len(audited("com.onbehalf.identity.login.failed")) >= 10 or None)
    assert failed


def test_a_correct_login_forgives_the_accounts_earlier_failures(world: World) -> None:
    user = world.customer_user(world.org_a, ["buyer"])
    for n in range(9):
        assert (
            _login(world.admin.client, world.admin, user["email"], f"typo-{n}").status_code == 401
        )
    world.login(user)
    for n in range(9):
        assert (
            _login(world.admin.client, world.admin, user["email"], f"typo-{n}").status_code == 401
        )
    world.login(user)


def test_one_address_is_throttled_across_accounts(
    world: World, other_address: httpx.Client
) -> None:
    """100 failures from one address (unknown accounts, so nothing is hashed) refuse the next
    login from there, even with a right password; another address is not affected."""

    def guess(n: int) -> int:
        email = f"{unique('nobody')}-{n}@example.test"
        return _login(other_address, world.admin, email, "not-the-password").status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        codes = list(pool.map(guess, range(100)))
    assert codes.count(401) == 100, codes
    refused = _login(other_address, world.admin, world.buyer_a["email"], PASSWORD)
    assert refused.status_code == 429 and "address" in refused.json()["detail"]
    world.login(world.buyer_a)


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("password", "at least 12"),
        ("12345678", "at least 12"),
        ("Password123456!", "commonly used"),
        ("1234567890qwerty", "commonly used"),
        ("aaaaaaaaaaaaaaaa", "too few different"),
        ("{local}-is-my-secret", "e-mail"),
    ],
)
def test_weak_passwords_are_refused(world: World, password: str, why: str) -> None:
    local = unique("weak")
    body = {
        "email": f"{local}@example.test",
        "name": "Weak",
        "password": password.format(local=local),
        "kind": "customer",
        "org_id": world.org_a["id"],
        "roles": ["buyer"],
    }
    response = world.admin.post("identity", "/v1/users", json=body)
    assert response.status_code == 422, response.text
    assert why in response.json()["detail"] and response.json()["reason"] == "weak_password"
    assert (
        _login(world.admin.client, world.admin, body["email"], body["password"]).status_code == 401
    )


def test_customer_admin_cannot_tell_whether_an_address_exists(world: World) -> None:
    own_admin = world.login(world.customer_user(world.org_a, ["admin"]))

    def create(email: str) -> httpx.Response:
        body = {
            "email": email,
            "name": "New Colleague",
            "password": "a-fine-passphrase-7",
            "kind": "customer",
            "org_id": world.org_a["id"],
            "roles": ["buyer"],
        }
        return own_admin.post("identity", "/v1/users", json=body)

    fresh = create(unique("fresh") + "@example.test")
    staff_address = create(world.rep["email"])
    other_customer = create(world.buyer_b["email"].upper())
    for response in (fresh, staff_address, other_customer):
        assert response.status_code == 201, response.text
        assert set(response.json()) == set(fresh.json())
        assert response.json()["org_id"] == world.org_a["id"]
        assert response.json()["roles"] == ["buyer"] and response.json()["active"] is True
    assert staff_address.json()["email"] == world.rep["email"]
    # Nothing happened to the existing accounts: same owner, same password.
    world.login(world.rep)
    world.login(world.buyer_b)
    # A platform admin is told.
    duplicate = world.admin.post(
        "identity",
        "/v1/users",
        json={
            "email": world.rep["email"],
            "name": "Dup",
            "password": "a-fine-passphrase-7",
            "kind": "staff",
            "roles": ["csr"],
        },
    )
    assert duplicate.status_code == 409
    refused = wait_until(
        lambda: audit_events(
            world.admin,
            type="com.onbehalf.identity.user.creation_refused",
            subject_org_id=world.org_a["id"],
        ),
        what="refused creation audited",
    )
    assert len(refused) == 2 and refused[0]["data"]["reason"] == "email_taken"
    assert ok(own_admin.get("identity", "/v1/me"))["org_id"] == world.org_a["id"]


def test_a_burst_from_one_address_is_refused_at_once_not_queued(world: World) -> None:
    """More logins in flight from one address than it may have are refused at once (429), so
    a burst never makes other people's logins wait behind it; none of them is a 500."""
    transport = httpx.HTTPTransport(local_address="127.0.0.4")
    with httpx.Client(transport=transport, timeout=30.0) as burst_client:

        def guess(n: int) -> httpx.Response:
            email = f"{unique('burst')}-{n}@example.test"
            return _login(burst_client, world.admin, email, "not-the-password")

        with ThreadPoolExecutor(max_workers=60) as pool:
            answers = list(pool.map(guess, range(60)))
    codes = [answer.status_code for answer in answers]
    assert set(codes) <= {401, 429}, codes
    refused = [answer for answer in answers if answer.status_code == 429]
    # Before, all 60 queued and each got its 401 in turn.
    assert refused, codes
    assert all(r.json()["reason"] == "login_throttled" for r in refused)
    assert all(r.headers["Retry-After"] == "1" for r in refused)
    world.login(world.buyer_a)  # another address is not affected
