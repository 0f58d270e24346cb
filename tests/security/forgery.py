"""Forged bearer tokens for the attack suite: re-signed, unsigned, HMAC'd or tampered copies of real ones."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def claims_of(token: str) -> dict[str, Any]:
    """The payload of a token, unverified (what an attacker reads from their own token)."""
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def header_of(token: str) -> dict[str, Any]:
    return dict(jwt.get_unverified_header(token))


def signed_by_another_key(token: str, **changes: Any) -> str:
    """The token's claims (changed as asked) signed with a fresh Ed25519 key under the real kid."""
    return jwt.encode(
        {**claims_of(token), **changes},
        Ed25519PrivateKey.generate(),
        algorithm="EdDSA",
        headers={"kid": header_of(token)["kid"]},
    )


def unsigned(token: str, *, alg: str = "none", **changes: Any) -> str:
    """alg=none: the claims with an empty signature (PyJWT will not encode this itself)."""
    header = {"alg": alg, "typ": "JWT", "kid": header_of(token)["kid"]}
    return f"{_segment(header)}.{_segment({**claims_of(token), **changes})}."


def hmac_signed(token: str, secret: bytes, **changes: Any) -> str:
    """HS256 with `secret` (the verifier's public key, in some form) as the shared secret."""
    header = {"alg": "HS256", "typ": "JWT", "kid": header_of(token)["kid"]}
    signing_input = f"{_segment(header)}.{_segment({**claims_of(token), **changes})}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def public_key_forms(jwk: dict[str, Any]) -> dict[str, bytes]:
    """Every way a confused verifier might read identity's public key as an HMAC secret."""
    public = jwt.PyJWK(jwk).key
    assert isinstance(public, Ed25519PublicKey)
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "pem": pem,
        "raw": raw,
        "jwk-x": str(jwk["x"]).encode(),
        "jwk-json": json.dumps(jwk).encode(),
    }


def tampered(token: str, **changes: Any) -> str:
    """The real header and signature around a changed payload."""
    header, _, signature = token.split(".")
    return f"{header}.{_segment({**claims_of(token), **changes})}.{signature}"
