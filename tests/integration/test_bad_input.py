"""Bad input gets a clear 4xx and writes nothing (checked against the state and the audit log)."""

from __future__ import annotations

import pytest

from tests.support import Api, World, audit_events, ok, wait_until


@pytest.fixture
def acting(world: World) -> Api:
    rep = world.login(world.rep)
    session, _ = world.act_as(rep, world.org_a)
    return session


def test_bad_cart_input_is_refused_and_nothing_is_written(world: World, acting: Api) -> None:
    before = ok(acting.get("cart", "/v1/cart"))
    cases = [
        ({"sku": "NO-SUCH-SKU", "quantity": 1}, 422, "unknown SKU"),
        ({"sku": world.skus[2], "quantity": 1}, 422, "unknown SKU"),  # outside A's assortment
        ({"sku": world.skus[0], "quantity": 0}, 422, "quantity"),
        ({"sku": world.skus[0], "quantity": -3}, 422, "quantity"),
        ({"sku": world.skus[0], "quantity": "2"}, 422, "quantity"),
        ({"sku": world.skus[0], "quantity": 1, "unit_price": "0.01"}, 422, "unit_price"),
        ({"quantity": 1}, 422, "sku"),
        ({"sku": world.skus[0], "quantity": 10_000_000}, 422, "maximum"),
    ]
    for body, status, words in cases:
        response = acting.post("cart", "/v1/cart/items", json=body)
        assert response.status_code == status, (body, response.text)
        assert words in response.json()["detail"], (body, response.json())

    malformed = acting.post(
        "cart", "/v1/cart/items", content=b'{"sku": ', headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 422 and "JSON" in malformed.json()["detail"]
    missing = acting.patch("cart", f"/v1/cart/items/{world.skus[0]}", json={"quantity": 2})
    assert missing.status_code == 404
    assert acting.delete("cart", f"/v1/cart/items/{world.skus[0]}").status_code == 404
    assert ok(acting.get("cart", "/v1/cart")) == before

    empty_order = acting.post("orders", "/v1/orders", headers={"Idempotency-Key": "e"})
    assert empty_order.status_code == 422 and "empty" in empty_order.json()["detail"]
    no_key = acting.post("orders", "/v1/orders")
    assert no_key.status_code == 422 and "Idempotency-Key" in no_key.json()["detail"]
    priced = acting.post(
        "orders", "/v1/orders", headers={"Idempotency-Key": "p"}, json={"total": "0.01"}
    )
    assert priced.status_code == 422

    # One good change as a sentinel: once it is audited, anything written before it would be too.
    ok(acting.post("cart", "/v1/cart/items", json={"sku": world.skus[0], "quantity": 1}))
    reviewer_user = world.staff(roles=["security_reviewer"], permissions=[], caretaker_of=[])
    reviewer = world.admin.login(reviewer_user["email"])
    subject = world.org_a["id"]
    added = wait_until(
        lambda: audit_events(reviewer, subject_org_id=subject, type="com.onbehalf.cart.item.added"),
        what="the sentinel change audited",
    )
    assert len(added) == 1
    assert (
        audit_events(reviewer, subject_org_id=subject, type="com.onbehalf.orders.order.placed")
        == []
    )


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer garbage", "Bearer a.b.c", "Basic dXNlcjpwYXNz", "Token abc"],
)
def test_missing_or_garbled_token_is_401(anonymous: Api, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    for service, method, path in [
        ("identity", "GET", "/v1/me"),
        ("catalog", "GET", "/v1/products"),
        ("cart", "POST", "/v1/cart/items"),
        ("orders", "POST", "/v1/orders"),
        ("audit", "GET", "/v1/audit/events"),
    ]:
        response = anonymous.client.request(
            method,
            anonymous.stack.url(service) + path,
            headers=headers,
            json={"sku": "x", "quantity": 1},
        )
        assert response.status_code == 401, (service, path, response.text)
        assert response.json()["detail"]
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_token_of_another_issuer_is_401(anonymous: Api) -> None:
    import jwt
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    forged = jwt.encode(
        {"sub": "x", "kind": "staff", "roles": ["platform_admin"], "exp": 9999999999, "iat": 1},
        Ed25519PrivateKey.generate(),
        algorithm="EdDSA",
        headers={"kid": "forged"},
    )
    response = anonymous.client.get(
        anonymous.stack.url("audit") + "/v1/audit/events",
        headers={"Authorization": f"Bearer {forged}"},
    )
    assert response.status_code == 401


def test_wrong_password_and_bad_admin_input(anonymous: Api, admin: Api) -> None:
    response = anonymous.client.post(
        anonymous.stack.url("identity") + "/v1/auth/token",
        json={"email": "admin@seller.test", "password": "wrong"},
    )
    assert response.status_code == 401
    assert response.json()["detail"] == "wrong email or password"
    bad_country = admin.post(
        "identity", "/v1/orgs", json={"name": "X", "contract_number": "Y", "country": "Germany"}
    )
    assert bad_country.status_code == 422 and "country" in bad_country.json()["detail"]
    bad_role = admin.post(
        "identity",
        "/v1/users",
        json={
            "email": "x@y.test",
            "name": "X",
            "password": "password-1",
            "kind": "staff",
            "roles": ["king"],
        },
    )
    assert bad_role.status_code == 422 and "king" in bad_role.json()["detail"]
    negative = admin.post(
        "catalog",
        "/v1/products",
        json={"sku": "NEG", "name": "n", "price": "-1", "currency": "EUR"},
    )
    assert negative.status_code == 422


@pytest.mark.parametrize("value", [0, 1, "false", "no", None])
def test_consent_takes_only_true_or_false(world: World, value: object) -> None:
    """What the customer's admin says of remote assistance is a JSON boolean or nothing changes:
    0, 1 or a string could mean either to whoever sent it."""
    own_admin = world.login(world.customer_user(world.org_a, ["admin"]))
    path = f"/v1/orgs/{world.org_a['id']}/consent"
    refused = own_admin.put("identity", path, json={"allow_assistance": value})
    assert refused.status_code == 422, refused.text
    assert "allow_assistance" in refused.json()["detail"]
    organisation = ok(world.admin.get("identity", f"/v1/orgs/{world.org_a['id']}"))
    assert organisation["allow_assistance"] is True


@pytest.mark.parametrize("path", ["/v1/audit/events", "/v1/audit/findings"])
@pytest.mark.parametrize("cursor", ["16880020337163179428605", str(2**63), "\uff11\uff12", "-1"])
def test_an_audit_cursor_no_row_can_have_is_422(admin: Api, path: str, cursor: str) -> None:
    # Schemathesis found it: a cursor of digits over 64 bits reached SQLite, which cannot bind
    # it (OverflowError, a 500).
    response = admin.get("audit", path, params={"cursor": cursor})
    assert response.status_code == 422, response.text
    assert "cursor" in response.json()["detail"]


def test_the_largest_audit_cursor_is_a_page(admin: Api) -> None:
    response = admin.get("audit", "/v1/audit/events", params={"cursor": str(2**63 - 1)})
    assert response.status_code == 200, response.text
