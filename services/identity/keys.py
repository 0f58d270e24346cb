"""Identity's signing keys (Ed25519): encrypted at rest, rotated, published while tokens live."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import jwt
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.principals import Principal
from libs.common.resources import Administration
from libs.common.runtime import ServiceRuntime
from libs.common.tokens import ALGORITHM
from services.identity import events
from services.identity.models import SigningKey
from services.identity.parts import identity_parts
from services.identity.settings import identity_settings

log = structlog.get_logger("keys")


def write_secret(path: Path, data: bytes) -> None:
    """Create `path` readable by its owner only, from the first byte on (no chmod race)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def load_or_create_kek(path: Path) -> bytes:
    """The key-encryption key: a mounted secret, or made (0600) at the first start."""
    if not path.exists():
        write_secret(path, secrets.token_hex(32).encode())
    mode = path.stat().st_mode
    if mode & 0o077:
        try:
            path.chmod(0o600)
        except OSError:
            # A Secret mounted read-only: Kubernetes makes its files 0440 for the pod's fsGroup
            # and nobody can change that; the mount keeps it from other pods. Readable by
            # every user of the machine, though, it is refused.
            if mode & 0o007:
                raise RuntimeError(
                    f"key-encryption key {path} is readable by every user and cannot be "
                    "made 0600 (mount it with defaultMode 0400)"
                ) from None
    kek = path.read_bytes().strip()
    if len(kek) < 32:
        raise RuntimeError(f"key-encryption key {path} is shorter than 32 bytes")
    return kek


def protect_file(path: Path) -> None:
    """Owner-only access to a file that holds secrets (identity's SQLite database holds password
    hashes and the encrypted signing keys); created empty first so SQLite keeps the mode."""
    if not path.exists():
        write_secret(path, b"")
    path.chmod(0o600)
    for suffix in ("-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.chmod(0o600)


def _encrypt(key: Ed25519PrivateKey, kek: bytes) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(kek),
    ).decode()


def _decrypt(row: SigningKey, kek: bytes) -> Ed25519PrivateKey:
    encrypted = "ENCRYPTED" in row.private_pem.split("\n", 1)[0]
    private = serialization.load_pem_private_key(
        row.private_pem.encode(), password=kek if encrypted else None
    )
    if not isinstance(private, Ed25519PrivateKey):
        raise RuntimeError(f"signing key {row.kid} is not an Ed25519 key")
    return private


def _jwk(kid: str, public: Ed25519PublicKey) -> dict[str, Any]:
    return {**OKPAlgorithm.to_jwk(public, as_dict=True), "kid": kid, "use": "sig", "alg": ALGORITHM}


@dataclass
class Signer:
    """Signs with the newest key; publishes every key a live token may still carry."""

    kid: str
    private_key: Ed25519PrivateKey
    issuer: str
    audience: str
    published: list[dict[str, Any]] = field(default_factory=list)
    current_since: datetime = field(default_factory=lambda: datetime.now(UTC))
    # The key-encryption key, for rotations; never logged (repr=False).
    kek: bytes = field(default=b"", repr=False)

    def sign(self, claims: dict[str, Any], *, expires_at: float) -> str:
        now = int(time.time())
        payload = {
            **claims,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "exp": int(expires_at),
            "jti": str(uuid4()),
        }
        return jwt.encode(payload, self.private_key, algorithm=ALGORITHM, headers={"kid": self.kid})

    def jwks(self) -> dict[str, Any]:
        return {"keys": list(self.published)}

    def take(self, other: Signer) -> None:
        """Adopt a freshly loaded key ring in place (every holder of this object sees it)."""
        self.kid, self.private_key = other.kid, other.private_key
        self.published, self.current_since = other.published, other.current_since


async def _rows(session: AsyncSession) -> list[SigningKey]:
    query = select(SigningKey).order_by(SigningKey.created_at.desc(), SigningKey.kid)
    return list((await session.scalars(query)).all())


def _new_row(kek: bytes) -> SigningKey:
    return SigningKey(
        kid=uuid4().hex, private_pem=_encrypt(Ed25519PrivateKey.generate(), kek), created_at=_now()
    )


def _now() -> datetime:
    return datetime.now(UTC)


async def rotate(session: AsyncSession, *, kek: bytes) -> str:
    """A new signing key, newest from now on; the kid."""
    row = _new_row(kek)
    session.add(row)
    await session.flush()
    return row.kid


async def load_signer(
    session: AsyncSession,
    *,
    kek: bytes,
    issuer: str,
    audience: str,
    token_lifetime_seconds: int,
    rotation_seconds: int | None = None,
) -> Signer:
    """The key ring from the database: a key is made when there is none (or the newest is
    older than `rotation_seconds`); keys stored in clear are encrypted; a key is published
    until `token_lifetime_seconds` after its successor took over, then deleted."""
    rows = await _rows(session)
    if not rows or (
        rotation_seconds is not None
        and rows[0].created_at + timedelta(seconds=rotation_seconds) <= _now()
    ):
        await rotate(session, kek=kek)
        rows = await _rows(session)
    published: list[dict[str, Any]] = []
    successor_since: datetime | None = None
    current: Ed25519PrivateKey | None = None
    for row in rows:
        private = _decrypt(row, kek)
        if "ENCRYPTED" not in row.private_pem.split("\n", 1)[0]:
            row.private_pem = _encrypt(private, kek)
        retired_for = (_now() - successor_since).total_seconds() if successor_since else 0.0
        if retired_for > token_lifetime_seconds:
            # Every token it signed has expired: neither published nor kept.
            await session.delete(row)
        else:
            published.append(_jwk(row.kid, private.public_key()))
            current = current or private
        successor_since = row.created_at
    assert current is not None
    await session.flush()
    return Signer(
        kid=rows[0].kid,
        private_key=current,
        issuer=issuer,
        audience=audience,
        published=published,
        current_since=rows[0].created_at,
        kek=kek,
    )


def jwks(runtime: ServiceRuntime) -> dict[str, Any]:
    """The key set identity publishes (every key whose tokens may still be alive)."""
    return _signer(runtime).jwks()


def _signer(runtime: ServiceRuntime) -> Signer:
    return identity_parts(runtime).signer


async def refresh(runtime: ServiceRuntime) -> None:
    """Reload the key ring (another replica may have rotated; a rotation may be due; a retired
    key may have outlived its tokens) and publish it to this process's verifier too."""
    signer, settings = _signer(runtime), identity_settings(runtime)
    async with runtime.unit_of_work() as uow:
        fresh = await load_signer(
            uow.session,
            kek=signer.kek,
            issuer=signer.issuer,
            audience=signer.audience,
            token_lifetime_seconds=settings.longest_token_seconds,
            rotation_seconds=int(settings.signing_key_rotation_days * 86400),
        )
    signer.take(fresh)
    runtime.verifier.set_jwks(signer.jwks())


async def key_refresher(runtime: ServiceRuntime) -> None:
    settings = identity_settings(runtime)
    while True:
        try:
            await refresh(runtime)
        except Exception as exc:  # the next round tries again; signing goes on meanwhile
            log.warning("signing_keys_refresh_failed", error=repr(exc))
        await asyncio.sleep(settings.signing_key_check_seconds)


async def rotate_now(*, runtime: ServiceRuntime, principal: Principal) -> dict[str, Any]:
    """`onbehalf keys rotate`: sign with a new key at once; the old one stays published until
    its last token has expired."""
    signer = _signer(runtime)
    async with runtime.unit_of_work() as uow:
        caller = principal
        runtime.authorizer.authorize(caller, "rotate_keys", Administration(area="keys"))
        previous = signer.kid
        kid = await rotate(uow.session, kek=signer.kek)
        uow.publish(events.SigningKeyRotated(kid=kid, previous_kid=previous), caller)
    await refresh(runtime)
    return {
        "kid": signer.kid,
        "previous_kid": previous,
        "published": [k["kid"] for k in signer.published],
    }
