"""The HTTP half of the attack suite: forged tokens, ended sessions, confinement, IDOR, mass assignment.

Each test is one attack against the running system and fails if the attack works: it asserts
the exact refusal (status and a JSON `detail`) and that nothing changed.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from onbehalf.stack import Stack, start_stack
from tests.cart.people import acting_staff, customer_admin
from tests.security import forgery
from tests.support import PASSWORD, Api, World, ok, unique, wait_until

# One read per service: a forged token must be refused by every verifier, not just one.
READS = [
    ("identity", "/v1/me"),
    ("catalog", "/v1/products"),
    ("cart", "/v1/cart"),
    ("orders", "/v1/orders"),
    ("audit", "/v1/audit/events"),
]


def refused(response: httpx.Response, status: int) -> dict[str, Any]:
    """The refusal's body, after checking its status and that it says what is wrong."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    body: dict[str, Any] = response.json()
    assert isinstance(body.get("detail"), str) and body["detail"], body
    return body


def seller_org_id(world: World) -> str:
    return str(ok(world.admin.get("identity", "/v1/me"))["org_id"])


def escalated_claims(world: World) -> dict[str, Any]:
    """What a customer's buyer would write into their token to become a platform admin."""
    return {
        "kind": "staff",
        "org_id": seller_org_id(world),
        "roles": ["platform_admin", "security_reviewer"],
        "permissions": ["place_orders_as_customer", "view_as_customer"],
    }


def assert_forged_token_gets_nothing(world: World, token: str, detail: str = "") -> None:
    """Every service answers 401, and the admin action it tries (a new organisation) is not done."""
    forged = world.admin.with_token(token)
    for service, path in READS:
        body = refused(forged.get(service, path), 401)
        assert detail in body["detail"], (service, body)
    name = unique("Forged Org")
    created = forged.post(
        "identity", "/v1/orgs", json={"name": name, "contract_number": unique("F"), "country": "DE"}
    )
    refused(created, 401)
    assert ok(world.admin.get("identity", "/v1/customers", params={"q": name}))["items"] == []


# ---------------------------------------------------------------- forged tokens


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_jwt_alg_none_is_refused(world: World, alg: str) -> None:
    buyer = world.login(world.buyer_a)
    token = forgery.unsigned(str(buyer.token), alg=alg, **escalated_claims(world))
    # Refused because verifiers accept EdDSA only, whatever the header says.
    assert_forged_token_gets_nothing(world, token, "invalid token")


@pytest.mark.parametrize("key_form", ["pem", "raw", "jwk-x", "jwk-json"])
def test_jwt_hs256_signed_with_the_public_key_is_refused(world: World, key_form: str) -> None:
    buyer = world.login(world.buyer_a)
    kid = forgery.header_of(str(buyer.token))["kid"]
    jwks = ok(world.admin.get("identity", "/.well-known/jwks.json"))
    [jwk] = [key for key in jwks["keys"] if key["kid"] == kid]
    secret = forgery.public_key_forms(jwk)[key_form]
    token = forgery.hmac_signed(str(buyer.token), secret, **escalated_claims(world))
    assert_forged_token_gets_nothing(world, token, "invalid token")


def _foreign_key_token(token: str, claims: dict[str, Any], how: str) -> str:
    import jwt
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    payload = {**forgery.claims_of(token), **claims}
    if how == "unknown_kid":
        return jwt.encode(payload, key, algorithm="EdDSA", headers={"kid": "attacker-key"})
    if how == "no_kid":
        return jwt.encode(payload, key, algorithm="EdDSA")
    if how == "embedded_jwk":
        # The attacker's own public key in the header, for a verifier that trusts `jwk`/`jku`.
        public = jwt.algorithms.OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
        headers = {"kid": "attacker-key", "jwk": public, "jku": "http://127.0.0.1:9/jwks.json"}
        return jwt.encode(payload, key, algorithm="EdDSA", headers=headers)
    assert how == "known_kid_other_key"
    return forgery.signed_by_another_key(token, **claims)


@pytest.mark.parametrize("how", ["unknown_kid", "no_kid", "embedded_jwk", "known_kid_other_key"])
def test_jwt_signed_by_another_key_is_refused(world: World, how: str) -> None:
    buyer = world.login(world.buyer_a)
    token = _foreign_key_token(str(buyer.token), escalated_claims(world), how)
    # Keys come from identity's key set only: never from the token's own header.
    detail = "invalid token" if how == "known_kid_other_key" else "unknown key"
    assert_forged_token_gets_nothing(world, token, detail)


@pytest.mark.parametrize(
    "change",
    ["org_id", "roles", "kind_and_roles", "exp", "sub"],
)
def test_jwt_with_a_tampered_payload_is_refused(world: World, change: str) -> None:
    buyer = world.login(world.buyer_a)
    ok(buyer.post("cart", "/v1/cart/items", json={"sku": world.skus[0], "quantity": 1}))
    buyer_b = world.login(world.buyer_b)
    cart_b = ok(buyer_b.get("cart", "/v1/cart"))
    claims = forgery.claims_of(str(buyer.token))
    changes = {
        "org_id": {"org_id": world.org_b["id"]},
        "roles": {"roles": ["admin", "buyer"]},
        "kind_and_roles": escalated_claims(world),
        "exp": {"exp": int(claims["exp"]) + 365 * 24 * 3600},
        "sub": {"sub": world.buyer_b["id"], "org_id": world.org_b["id"]},
    }[change]
    token = forgery.tampered(str(buyer.token), **changes)
    assert_forged_token_gets_nothing(world, token, "invalid token")
    forged = buyer.with_token(token)
    refused(forged.post("cart", "/v1/cart/items", json={"sku": world.skus[0], "quantity": 5}), 401)
    assert ok(buyer_b.get("cart", "/v1/cart")) == cart_b


def test_tampered_acting_token_cannot_turn_view_mode_into_full(world: World) -> None:
    acting, _, _ = acting_staff(world, mode="view")
    token = forgery.tampered(str(acting.token), mode="full")
    forged = acting.with_token(token)
    before = ok(acting.get("cart", "/v1/cart"))
    body = refused(
        forged.post("cart", "/v1/cart/items", json={"sku": world.skus[0], "quantity": 1}), 401
    )
    assert "invalid token" in body["detail"]
    refused(forged.post("cart", "/v1/cart/lock"), 401)
    assert ok(acting.get("cart", "/v1/cart")) == before


# A stack of its own whose tokens live three seconds: the only honest way to get a token
# identity really signed that has really expired.
TOKEN_SECONDS = 3


@pytest.fixture(scope="module")
def short_token_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, str]]:
    password = secrets.token_urlsafe(16)
    stack = start_stack(
        tmp_path_factory.mktemp("short-tokens"),
        admin_email="admin@short-tokens.test",
        admin_password=password,
        extra_env={"ONBEHALF_ACCESS_TOKEN_SECONDS": str(TOKEN_SECONDS)},
    )
    yield stack, password
    stack.stop()


def test_expired_token_is_refused(short_token_stack: tuple[Stack, str]) -> None:
    stack, password = short_token_stack
    with httpx.Client(timeout=15.0) as client:
        admin = Api(stack=stack, client=client).login("admin@short-tokens.test", password)
        claims = forgery.claims_of(str(admin.token))
        assert claims["exp"] - claims["iat"] == TOKEN_SECONDS
        # Used while valid, so every verifier has it in its cache: expiry must beat the cache.
        for service, path in [("identity", "/v1/me"), ("audit", "/v1/audit/events")]:
            ok(admin.get(service, path))

        def expired() -> httpx.Response | None:
            response = admin.get("identity", "/v1/me")
            return response if response.status_code == 401 else None

        wait_until(expired, timeout=TOKEN_SECONDS + 5, what="the token expires")
        for service, path in READS:
            body = refused(admin.get(service, path), 401)
            assert body["detail"] == "token has expired", (service, body)
        name = unique("Late Org")
        late = admin.post(
            "identity",
            "/v1/orgs",
            json={"name": name, "contract_number": unique("L"), "country": "DE"},
        )
        refused(late, 401)
        fresh = Api(stack=stack, client=client).login("admin@short-tokens.test", password)
        assert ok(fresh.get("identity", "/v1/customers", params={"q": name}))["items"] == []


# ---------------------------------------------------------------- ended acting sessions


@pytest.mark.parametrize("ended_by", ["stop", "switch"])
def test_acting_token_is_useless_after_stop_or_switch(world: World, ended_by: str) -> None:
    ok(
        world.admin.put("identity", f"/v1/orgs/{world.org_b['id']}/caretakers/{world.rep['id']}"),
        204,
    )
    buyer = world.login(world.buyer_a)
    ok(buyer.post("cart", "/v1/cart/items", json={"sku": world.skus[0], "quantity": 1}))
    cart_before = ok(buyer.get("cart", "/v1/cart"))
    rep = world.login(world.rep)
    acting, started = world.act_as(rep, world.org_a)
    if ended_by == "stop":
        assert acting.delete("identity", "/v1/acting-as/current").status_code == 204
    else:
        switched = acting.post(
            "identity",
            "/v1/acting-as/switch",
            json={"customer_org_id": world.org_b["id"], "mode": "full"},
        )
        ok(switched, 201)

    def everywhere_refused() -> bool:
        return all(acting.get(s, p).status_code == 401 for s, p in READS[:4])

    wait_until(everywhere_refused, what="every service refuses the ended session")
    attempts = [
        ("cart", "POST", "/v1/cart/items", {"sku": world.skus[1], "quantity": 3}),
        ("cart", "PATCH", f"/v1/cart/items/{world.skus[0]}", {"quantity": 9}),
        ("cart", "POST", "/v1/cart/lock", None),
        ("orders", "POST", "/v1/orders", None),
        ("identity", "GET", "/v1/acting-as/current", None),
        ("identity", "DELETE", "/v1/acting-as/current", None),
        (
            "identity",
            "POST",
            "/v1/acting-as/switch",
            {"customer_org_id": world.org_a["id"], "mode": "full"},
        ),
    ]
    for service, method, path, body in attempts:
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        response = acting.request(method, service, path, json=body, headers=headers)
        assert refused(response, 401)["detail"] == "the acting session has ended", (path, body)
    assert ok(buyer.get("cart", "/v1/cart")) == cart_before
    assert ok(buyer.get("orders", "/v1/orders"))["items"] == []
    sessions = ok(world.admin.get("identity", f"/v1/orgs/{world.org_a['id']}/acting-sessions"))
    [record] = [s for s in sessions["items"] if s["session_id"] == started["session_id"]]
    assert record["ended_at"]


# ---------------------------------------------------------------- acting confinement

VIEW_MODE_WRITES = {
    "cart_add": ("cart", "POST", "/v1/cart/items", {"sku": "{sku1}", "quantity": 1}),
    "cart_change": ("cart", "PATCH", "/v1/cart/items/{sku0}", {"quantity": 7}),
    "cart_remove": ("cart", "DELETE", "/v1/cart/items/{sku0}", None),
    "cart_lock": ("cart", "POST", "/v1/cart/lock", None),
    "order": ("orders", "POST", "/v1/orders", None),
    "saved_list": ("cart", "POST", "/v1/saved-lists", {"name": "{name}"}),
}


def _filled(value: Any, world: World) -> Any:
    names = {"sku0": world.skus[0], "sku1": world.skus[1], "name": unique("List")}
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, dict):
        return {k: _filled(v, world) for k, v in value.items()}
    return value


@pytest.mark.parametrize("write", VIEW_MODE_WRITES)
def test_view_mode_acting_session_cannot_write(world: World, write: str) -> None:
    buyer = world.login(world.buyer_a)
    ok(buyer.post("cart", "/v1/cart/items", json={"sku": world.skus[0], "quantity": 2}))
    before = ok(buyer.get("cart", "/v1/cart"))
    acting, _, _ = acting_staff(world, mode="view")
    service, method, path, body = VIEW_MODE_WRITES[write]
    response = acting.request(
        method,
        service,
        _filled(path, world),
        json=_filled(body, world),
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert refused(response, 403)["reason"]
    assert ok(buyer.get("cart", "/v1/cart")) == before
    assert ok(buyer.get("orders", "/v1/orders"))["items"] == []
    assert ok(buyer.get("cart", "/v1/saved-lists"))["items"] == []


def _sessions_on(world: World, org: dict[str, Any]) -> list[dict[str, Any]]:
    page = ok(world.admin.get("identity", f"/v1/orgs/{org['id']}/acting-sessions"))
    return list(page["items"])


def _consent(world: World) -> bool:
    page = ok(world.admin.get("identity", "/v1/customers", params={"q": world.org_a["name"]}))
    return bool(page["items"])


NEVER_WHILE_ACTING = ["create_user", "change_consent", "start_acting", "read_audit_log"]


@pytest.mark.parametrize("action", NEVER_WHILE_ACTING)
def test_never_while_acting_even_in_full_mode(world: World, action: str) -> None:
    acting, staff, _ = acting_staff(world, mode="full")
    ok(world.admin.put("identity", f"/v1/orgs/{world.org_b['id']}/caretakers/{staff['id']}"), 204)
    email = unique("planted") + "@example.test"
    sessions_before = _sessions_on(world, world.org_b)
    if action == "create_user":
        body = {
            "email": email,
            "name": "Planted Admin",
            "password": PASSWORD,
            "kind": "customer",
            "org_id": world.org_a["id"],
            "roles": ["admin"],
        }
        response = acting.post("identity", "/v1/users", json=body)
    elif action == "change_consent":
        response = acting.put(
            "identity",
            f"/v1/orgs/{world.org_a['id']}/consent",
            json={"allow_assistance": False},
        )
    elif action == "start_acting":
        response = acting.post(
            "identity",
            "/v1/acting-as",
            json={"customer_org_id": world.org_b["id"], "mode": "full"},
        )
    else:
        response = acting.get("audit", "/v1/audit/events")
    assert refused(response, 403)["reason"]
    # Nothing changed: no user, consent still given, no session on B, the log unread.
    login = world.admin.client.post(
        world.admin.stack.url("identity") + "/v1/auth/token",
        json={"email": email, "password": PASSWORD},
    )
    refused(login, 401)
    assert _consent(world)
    assert _sessions_on(world, world.org_b) == sessions_before
    assert "items" not in response.json()


# ---------------------------------------------------------------- IDOR across organisations


@pytest.fixture
def org_b_things(world: World) -> dict[str, Any]:
    """B's order, saved list and cart, made by B's buyer; what A must not reach by id."""
    buyer_b = world.login(world.buyer_b)
    ok(buyer_b.post("cart", "/v1/cart/items", json={"sku": world.skus[2], "quantity": 1}))
    order = ok(
        buyer_b.post("orders", "/v1/orders", headers={"Idempotency-Key": uuid.uuid4().hex}), 201
    )
    ok(buyer_b.post("cart", "/v1/cart/items", json={"sku": world.skus[1], "quantity": 4}))
    saved = ok(
        buyer_b.post(
            "cart",
            "/v1/saved-lists",
            json={"name": unique("B list"), "items": [{"sku": world.skus[1], "quantity": 2}]},
        ),
        201,
    )
    return {"buyer_b": buyer_b, "order": order, "list": saved}


IDOR: dict[str, tuple[str, str, str, dict[str, Any] | None, int]] = {
    "read_order": ("orders", "GET", "/v1/orders/{order}", None, 404),
    "cancel_order": ("orders", "POST", "/v1/orders/{order}/cancel", {}, 404),
    "read_saved_list": ("cart", "GET", "/v1/saved-lists/{list}", None, 404),
    "rename_saved_list": ("cart", "PATCH", "/v1/saved-lists/{list}", {"name": "Mine"}, 404),
    "delete_saved_list": ("cart", "DELETE", "/v1/saved-lists/{list}", None, 404),
    "add_to_saved_list": (
        "cart",
        "POST",
        "/v1/saved-lists/{list}/items",
        {"sku": "{sku1}", "quantity": 1},
        404,
    ),
    "saved_list_into_cart": ("cart", "POST", "/v1/saved-lists/{list}/add-to-cart", None, 404),
    "read_acting_sessions": ("identity", "GET", "/v1/orgs/{org_b}/acting-sessions", None, 403),
    "deactivate_user": ("identity", "PATCH", "/v1/users/{buyer_b}", {"active": False}, 403),
}


@pytest.mark.parametrize("who", ["customer_admin", "acting_staff"])
@pytest.mark.parametrize("attack", IDOR)
def test_idor_across_organisations(
    world: World, org_b_things: dict[str, Any], attack: str, who: str
) -> None:
    if who == "customer_admin":
        attacker, _ = customer_admin(world, world.org_a)
    else:
        attacker, _, _ = acting_staff(world, mode="full")
    buyer_b = org_b_things["buyer_b"]
    cart_b = ok(buyer_b.get("cart", "/v1/cart"))
    service, method, path, body, status = IDOR[attack]
    ids = {
        "order": org_b_things["order"]["id"],
        "list": org_b_things["list"]["id"],
        "org_b": world.org_b["id"],
        "buyer_b": world.buyer_b["id"],
        "sku1": world.skus[1],
    }
    response = attacker.request(
        method,
        service,
        path.format(**ids),
        json={k: v.format(**ids) if isinstance(v, str) else v for k, v in body.items()}
        if body is not None
        else None,
    )
    if who == "acting_staff" and service == "identity":
        status = 403  # identity refuses any of this while acting, whoever's it is
    refused(response, status)
    order = ok(buyer_b.get("orders", f"/v1/orders/{ids['order']}"))
    assert order["status"] == "placed"
    assert ok(buyer_b.get("cart", f"/v1/saved-lists/{ids['list']}")) == org_b_things["list"]
    assert ok(buyer_b.get("cart", "/v1/cart")) == cart_b
    world.login(world.buyer_b)  # still active


# ---------------------------------------------------------------- client-supplied prices

CLIENT_PRICES = {
    "cart_add_unit_price": (
        "POST",
        "cart",
        "/v1/cart/items",
        {"sku": "{sku0}", "quantity": 1, "unit_price": "0.01"},
    ),
    "cart_add_price": (
        "POST",
        "cart",
        "/v1/cart/items",
        {"sku": "{sku0}", "quantity": 1, "price": "0.01"},
    ),
    "cart_change_unit_price": (
        "PATCH",
        "cart",
        "/v1/cart/items/{sku0}",
        {"quantity": 3, "unit_price": "0.01"},
    ),
    "saved_list_unit_price": (
        "POST",
        "cart",
        "/v1/saved-lists",
        {"name": "{name}", "items": [{"sku": "{sku0}", "quantity": 1, "unit_price": "0.01"}]},
    ),
    "order_total": ("POST", "orders", "/v1/orders", {"total": "0.01", "currency": "EUR"}),
    "order_items": (
        "POST",
        "orders",
        "/v1/orders",
        {"items": [{"sku": "{sku0}", "quantity": 2, "unit_price": "0.01"}]},
    ),
}


def _filled_deep(value: Any, world: World) -> Any:
    if isinstance(value, list):
        return [_filled_deep(v, world) for v in value]
    if isinstance(value, dict):
        return {k: _filled_deep(v, world) for k, v in value.items()}
    return _filled(value, world)


@pytest.mark.parametrize("attack", CLIENT_PRICES)
def test_client_supplied_prices_are_refused_and_catalog_prices_rule(
    world: World, attack: str
) -> None:
    acting, _, _ = acting_staff(world, mode="full")
    ok(acting.post("cart", "/v1/cart/lock"))
    ok(acting.post("cart", "/v1/cart/items", json={"sku": world.skus[0], "quantity": 2}))
    before = ok(acting.get("cart", "/v1/cart"))
    method, service, path, body = CLIENT_PRICES[attack]
    response = acting.request(
        method,
        service,
        _filled(path, world),
        json=_filled_deep(body, world),
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    refused(response, 422)
    assert ok(acting.get("cart", "/v1/cart")) == before
    assert ok(acting.get("cart", "/v1/saved-lists"))["items"] == []
    assert ok(acting.get("orders", "/v1/orders"))["items"] == []
    # The order that is placed is at A's own catalog price (7.50), whatever was sent before.
    order = ok(
        acting.post("orders", "/v1/orders", headers={"Idempotency-Key": uuid.uuid4().hex}), 201
    )
    [line] = order["items"]
    assert (line["sku"], line["quantity"], line["unit_price"]) == (world.skus[0], 2, "7.50")
    assert order["total"] == "15.00"


# ---------------------------------------------------------------- mass assignment


def _me(world: World, user: dict[str, Any]) -> dict[str, Any]:
    me = ok(world.login(user).get("identity", "/v1/me"))
    return {k: me[k] for k in ("id", "kind", "org_id", "roles", "permissions")}


MASS_ASSIGNMENT: dict[str, tuple[str, str, str, dict[str, Any], int]] = {
    # (who sends it, method, path, body, status)
    "user_kind": ("customer_admin", "PATCH", "/v1/users/{buyer_a}", {"kind": "staff"}, 422),
    "user_org_id": ("customer_admin", "PATCH", "/v1/users/{buyer_a}", {"org_id": "{org_b}"}, 422),
    "user_id": ("customer_admin", "PATCH", "/v1/users/{buyer_a}", {"id": "{buyer_b}"}, 422),
    "user_email": (
        "customer_admin",
        "PATCH",
        "/v1/users/{buyer_a}",
        {"email": "taken@example.test"},
        422,
    ),
    "user_staff_role": (
        "customer_admin",
        "PATCH",
        "/v1/users/{buyer_a}",
        {"roles": ["platform_admin"]},
        422,
    ),
    "user_staff_permission": (
        "customer_admin",
        "PATCH",
        "/v1/users/{buyer_a}",
        {"permissions": ["place_orders_as_customer"]},
        422,
    ),
    "own_roles_as_buyer": ("buyer", "PATCH", "/v1/users/{buyer_a}", {"roles": ["admin"]}, 403),
    "own_active_as_buyer": ("buyer", "PATCH", "/v1/users/{buyer_a}", {"active": True}, 403),
    "org_id_and_seller_flag": (
        "platform_admin",
        "POST",
        "/v1/orgs",
        {
            "name": "{name}",
            "contract_number": "{name}",
            "country": "DE",
            "id": "{org_a}",
            "is_seller": True,
            "status": "obsolete",
        },
        422,
    ),
    "org_by_customer_admin": (
        "customer_admin",
        "POST",
        "/v1/orgs",
        {"name": "{name}", "contract_number": "{name}", "country": "DE"},
        403,
    ),
    "cart_item_org_id": (
        "buyer",
        "POST",
        "/v1/cart/items",
        {"sku": "{sku0}", "quantity": 1, "org_id": "{org_b}"},
        422,
    ),
    "cart_item_id_and_version": (
        "buyer",
        "POST",
        "/v1/cart/items",
        {"sku": "{sku0}", "quantity": 1, "id": "x", "version": 0},
        422,
    ),
    "acting_session_actor": (
        "rep",
        "POST",
        "/v1/acting-as",
        {"customer_org_id": "{org_a}", "mode": "view", "actor_id": "{buyer_b}", "expires_at": 0},
        422,
    ),
}


@pytest.mark.parametrize("attack", MASS_ASSIGNMENT)
def test_mass_assignment_is_refused(world: World, attack: str) -> None:
    who, method, path, body, status = MASS_ASSIGNMENT[attack]
    name = unique("Mass")
    ids = {
        "buyer_a": world.buyer_a["id"],
        "buyer_b": world.buyer_b["id"],
        "org_a": world.org_a["id"],
        "org_b": world.org_b["id"],
        "sku0": world.skus[0],
        "name": name,
    }
    callers: dict[str, Callable[[], Api]] = {
        "customer_admin": lambda: customer_admin(world, world.org_a)[0],
        "buyer": lambda: world.login(world.buyer_a),
        "platform_admin": lambda: world.admin,
        "rep": lambda: world.login(world.rep),
    }
    caller = callers[who]()
    buyer_a_before = _me(world, world.buyer_a)
    cart_before = ok(world.login(world.buyer_a).get("cart", "/v1/cart"))
    sessions_before = _sessions_on(world, world.org_a)
    filled = {k: v.format(**ids) if isinstance(v, str) else v for k, v in body.items()}
    response = caller.request(
        method, "identity" if "/v1/cart" not in path else "cart", path.format(**ids), json=filled
    )
    refused(response, status)
    assert _me(world, world.buyer_a) == buyer_a_before
    assert ok(world.login(world.buyer_a).get("cart", "/v1/cart")) == cart_before
    assert _sessions_on(world, world.org_a) == sessions_before
    assert ok(world.admin.get("identity", "/v1/customers", params={"q": name}))["items"] == []
    org_a = ok(world.admin.get("identity", "/v1/customers", params={"q": world.org_a["name"]}))
    assert [o["status"] for o in org_a["items"]] == ["active"]
