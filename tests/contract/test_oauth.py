"""An off-the-shelf OAuth client (Authlib) against identity: discovery, the password grant,
RFC 8693 token exchange for an acting token, RFC 7662 introspection before and after the
session is stopped (docs/oauth.md)."""

from __future__ import annotations

from typing import Any

import jwt
from authlib.integrations.httpx_client import OAuth2Client

from tests.support import PASSWORD, World, ok, security_reviewer

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"


def _introspect(client: OAuth2Client, url: str, admin_token: str, token: str) -> dict[str, Any]:
    response = client.introspect_token(
        url, token=token, headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    answer: dict[str, Any] = response.json()
    return answer


def test_authlib_exchanges_a_staff_token_and_introspects_it(world: World) -> None:
    admin = world.admin
    meta = ok(admin.get("identity", "/.well-known/openid-configuration"))
    assert EXCHANGE in meta["grant_types_supported"] and meta["introspection_endpoint"]
    with OAuth2Client(client_id="outside-app", token_endpoint_auth_method="none") as client:
        staff = client.fetch_token(
            meta["oauth_token_endpoint"], username=world.rep["email"], password=PASSWORD
        )
        acting = client.fetch_token(
            meta["oauth_token_endpoint"],
            grant_type=EXCHANGE,
            subject_token=staff["access_token"],
            subject_token_type=ACCESS_TOKEN,
            resource=f"urn:onbehalf:org:{world.org_a['id']}",
            scope="acting:full",
        )
        assert acting["issued_token_type"] == ACCESS_TOKEN
        assert acting["token_type"] == "Bearer" and 0 < acting["expires_in"] <= 8 * 3600
        claims = jwt.decode(acting["access_token"], options={"verify_signature": False})
        assert claims["sub"] == world.org_a["id"] and claims["act"]["sub"] == world.rep["id"]
        assert "roles" not in claims["act"]  # RFC 8693 §4.1: act names the actor, nothing more
        as_customer = admin.with_token(acting["access_token"])
        assert ok(as_customer.get("catalog", "/v1/products"))["items"]

        url = meta["introspection_endpoint"]
        active = _introspect(client, url, admin.token or "", acting["access_token"])
        assert active["active"] is True and active["act"]["sub"] == world.rep["id"]
        assert active["sub"] == world.org_a["id"] and active["scope"] == "acting:full"

        ok(as_customer.delete("identity", "/v1/acting-as/current"), 204)
        stopped = _introspect(client, url, admin.token or "", acting["access_token"])
        assert stopped == {"active": False}
        print(f"\nAuthlib token exchange: {sorted(acting)} expires_in={acting['expires_in']}")
        print(f"introspection while acting: active={active['active']} sub={active['sub']}")
        print(f"introspection after stop: {stopped}")


def test_the_token_endpoint_speaks_oauth_errors_and_never_caches(world: World) -> None:
    admin = world.admin
    token_url = admin.stack.url("identity") + "/oauth/token"
    staff = world.login(world.rep)
    refused = admin.client.post(
        token_url,
        data={
            "grant_type": EXCHANGE,
            "subject_token": staff.token,
            "subject_token_type": ACCESS_TOKEN,
            "resource": f"urn:onbehalf:org:{world.org_b['id']}",
        },
    )
    assert refused.status_code == 400, refused.text
    body = refused.json()
    assert body["error"] == "invalid_target" and body["reason"] and body["detail"]
    issued = admin.client.post(
        token_url,
        data={"grant_type": "password", "username": world.rep["email"], "password": PASSWORD},
    )
    assert issued.status_code == 200 and issued.headers["cache-control"] == "no-store"
    introspect = admin.stack.url("identity") + "/oauth/introspect"
    as_reviewer = security_reviewer(world.admin)
    denied = admin.client.post(
        introspect, data={"token": staff.token}, headers=as_reviewer.headers()
    )
    assert denied.status_code == 403 and denied.json()["reason"]
