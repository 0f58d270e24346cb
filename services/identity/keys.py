"""Identity's signing keys (Ed25519) and the tokens it signs with them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.tokens import ALGORITHM
from services.identity.models import SigningKey


@dataclass(frozen=True)
class Signer:
    kid: str
    private_key: Ed25519PrivateKey
    issuer: str
    audience: str

    def sign(self, claims: dict[str, Any], *, expires_at: float) -> str:
        now = int(time.time())
        payload = {
            **claims,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": int(expires_at),
            "jti": str(uuid4()),
        }
        return jwt.encode(payload, self.private_key, algorithm=ALGORITHM, headers={"kid": self.kid})

    def jwks(self) -> dict[str, Any]:
        public = OKPAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": ALGORITHM}]}


async def load_or_create_signer(session: AsyncSession, *, issuer: str, audience: str) -> Signer:
    """The newest stored key, or a new one: tokens survive an identity restart."""
    row = await session.scalar(select(SigningKey).order_by(SigningKey.created_at.desc()).limit(1))
    if row is None:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        row = SigningKey(kid=uuid4().hex, private_pem=pem)
        session.add(row)
        await session.flush()
    private = serialization.load_pem_private_key(row.private_pem.encode(), password=None)
    if not isinstance(private, Ed25519PrivateKey):
        raise RuntimeError(f"signing key {row.kid} is not an Ed25519 key")
    return Signer(kid=row.kid, private_key=private, issuer=issuer, audience=audience)
