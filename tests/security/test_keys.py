"""Signing keys stay secret (encrypted, owner-only files) and rotate without logging anyone out."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.ext.asyncio import create_async_engine

from libs.common.db import create_sessionmaker
from libs.common.errors import Unauthenticated
from libs.common.revocation import RevocationSet
from libs.common.tokens import TokenVerifier
from services.identity.keys import load_or_create_kek, load_signer, rotate
from services.identity.models import Base, SigningKey
from tests.conftest import ADMIN_EMAIL
from tests.support import Api, World

SERVICES = [("catalog", "/v1/products"), ("cart", "/v1/cart"), ("orders", "/v1/orders")]


def _kid(token: str | None) -> str:
    return str(jwt.get_unverified_header(token or "")["kid"])


def _fetches(api: Api, service: str) -> float:
    for line in api.get(service, "/metrics").text.splitlines():
        if line.startswith("onbehalf_jwks_fetches_total "):
            return float(line.split()[1])
    return 0.0


def test_identity_secrets_are_owner_only_and_the_key_is_encrypted(anonymous: Api) -> None:
    data = anonymous.stack.workdir / "db"
    for path in (data / "identity.db", data / "signing-kek"):
        assert path.stat().st_mode & 0o777 == 0o600, path
    with sqlite3.connect(data / "identity.db") as db:
        pems = [row[0] for row in db.execute("select private_pem from signing_keys")]
    assert pems and all(p.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----") for p in pems)


def test_jwks_and_discovery_name_the_algorithm(anonymous: Api, world: World) -> None:
    keys = anonymous.get("identity", "/.well-known/jwks.json").json()["keys"]
    assert keys and all(k["alg"] == "EdDSA" and k["kid"] for k in keys)
    discovery = anonymous.get("identity", "/.well-known/openid-configuration").json()
    assert discovery["jwks_uri"].endswith("/.well-known/jwks.json")
    assert discovery["token_endpoint"].endswith("/v1/auth/token")
    assert discovery["id_token_signing_alg_values_supported"] == ["EdDSA"]
    claims = jwt.decode(world.login(world.buyer_a).token or "", options={"verify_signature": False})
    assert claims["jti"] and claims["nbf"] <= time.time() + 1


def test_rotation_keeps_old_tokens_and_new_ones_work_everywhere(
    world: World, admin_password: str
) -> None:
    buyer_before = world.login(world.buyer_a)
    old_kid = _kid(buyer_before.token)
    refused = world.login(world.rep).post("identity", "/v1/keys/rotate")
    assert refused.status_code == 403 and refused.json()["reason"]
    stack = world.admin.stack
    cli = subprocess.run(
        [sys.executable, "-c", "from onbehalf.cli import main; main()", "keys", "rotate"],
        env={
            **os.environ,
            "ONBEHALF_IDENTITY_URL": stack.url("identity"),
            "ONBEHALF_ADMIN_EMAIL": ADMIN_EMAIL,
            "ONBEHALF_ADMIN_PASSWORD": admin_password,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    published = {
        k["kid"] for k in world.admin.get("identity", "/.well-known/jwks.json").json()["keys"]
    }
    buyer_after = world.login(world.buyer_a)
    new_kid = _kid(buyer_after.token)
    assert new_kid != old_kid and {old_kid, new_kid} <= published, cli.stdout
    for service, path in SERVICES:
        # Each service has never seen the new key: it fetches the key set once, then accepts.
        assert buyer_after.get(service, path).status_code == 200, service
        assert buyer_before.get(service, path).status_code == 200, service
    assert buyer_after.get("identity", "/v1/me").status_code == 200
    assert buyer_before.get("identity", "/v1/me").status_code == 200


def test_garbage_key_ids_cannot_make_services_hammer_identity(world: World) -> None:
    """Tokens naming unknown keys are refused, and cause at most one key-set fetch per period
    (30 s by default) however many arrive."""
    forged_key = Ed25519PrivateKey.generate()
    before = {service: _fetches(world.admin, service) for service, _ in SERVICES}
    now = int(time.time())
    for n in range(20):
        token = jwt.encode(
            {"sub": "x", "kind": "customer", "iat": now, "nbf": now, "exp": now + 60},
            forged_key,
            algorithm="EdDSA",
            headers={"kid": f"garbage-{n}"},
        )
        for service, path in SERVICES:
            assert world.admin.with_token(token).get(service, path).status_code == 401
    for service, _ in SERVICES:
        assert _fetches(world.admin, service) - before[service] <= 1, service


def test_a_retired_key_is_dropped_once_its_tokens_expired_and_then_refused(
    tmp_path: Path,
) -> None:
    """The key ring over a real SQLite database: after rotation the old key stays published for
    the longest token lifetime, then it is deleted and its tokens are refused."""

    async def scenario() -> None:
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'identity.db'}")
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        sessions = create_sessionmaker(engine)
        kek = load_or_create_kek(tmp_path / "signing-kek")
        names = {"issuer": "onbehalf-identity", "audience": "onbehalf"}
        iss, aud = names["issuer"], names["audience"]
        async with sessions() as session, session.begin():
            old = await load_signer(
                session, kek=kek, token_lifetime_seconds=3600, issuer=iss, audience=aud
            )
            old_token = old.sign(
                {"sub": "u", "kind": "customer", "org_id": "o", "name": "n"},
                expires_at=time.time() + 60,
            )
            await rotate(session, kek=kek)
            ring = await load_signer(
                session, kek=kek, token_lifetime_seconds=3600, issuer=iss, audience=aud
            )
            assert [k["kid"] for k in ring.published] == [ring.kid, old.kid]
            # The successor took over two hours ago: every token of the old key has expired.
            newest = await session.get(SigningKey, ring.kid)
            oldest = await session.get(SigningKey, old.kid)
            assert newest is not None and oldest is not None
            oldest.created_at = datetime.now(UTC) - timedelta(hours=3)
            newest.created_at = datetime.now(UTC) - timedelta(hours=2)
            await session.flush()
            ring = await load_signer(
                session, kek=kek, token_lifetime_seconds=3600, issuer=iss, audience=aud
            )
            assert [k["kid"] for k in ring.published] == [ring.kid]
            assert await session.get(SigningKey, old.kid) is None
        verifier = TokenVerifier(revoked=RevocationSet(), issuer=iss, audience=aud)
        verifier.set_jwks(ring.jwks())
        with pytest.raises(Unauthenticated, match="unknown key"):
            verifier.verify(old_token)
        await engine.dispose()

    asyncio.run(scenario())
    assert (tmp_path / "signing-kek").stat().st_mode & 0o777 == 0o600


def test_acting_token_follows_rfc_8693_act_claim(world: World) -> None:
    """`act` names the actor (sub and identity claims), not the actor's roles."""
    acting, _ = world.act_as(world.login(world.rep), world.org_a)
    claims = jwt.decode(acting.token or "", options={"verify_signature": False})
    assert claims["sub"] == world.org_a["id"] and claims["act"]["sub"] == world.rep["id"]
    assert "roles" not in claims["act"] and claims["actor_roles"] == ["sales_rep"]
    assert claims["jti"] and claims["nbf"]
    assert acting.get("cart", "/v1/cart").status_code == 200
