"""Event-signing keys: each service signs what it emits with its own Ed25519 key; audit knows them all."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

EVENT_KEYS_DIR = "events"
PUBLIC_KEYS_FILE = "public.json"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id(public_key: Ed25519PublicKey) -> str:
    """A stable id for a public key: the start of its SHA-256, so a rotated key gets a new one."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class EventSigningKey:
    """A service's private key and the id published beside its public half."""

    service: str
    kid: str
    private_key: Ed25519PrivateKey


@dataclass(frozen=True, slots=True)
class EventPublicKey:
    service: str
    kid: str
    public_key: Ed25519PublicKey

    def jwk(self) -> dict[str, str]:
        raw = self.public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "alg": "EdDSA",
            "use": "sig",
            "kid": self.kid,
            "x": _b64url(raw),
            "service": self.service,
        }


def _write_secret(path: Path, data: bytes) -> None:
    """Written 0600 from the first byte (never world-readable, not even for a moment)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    path.chmod(0o600)


def write_event_keys(secrets_dir: Path, services: Iterable[str]) -> Path:
    """Make a signing key for each service that has none; (re)write the public key file.

    Returns the public key file. Existing keys are kept, so a restart signs with the same key.
    """
    folder = secrets_dir / EVENT_KEYS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    public: list[dict[str, str]] = []
    for service in services:
        path = signing_key_path(secrets_dir, service)
        if not path.exists():
            private = Ed25519PrivateKey.generate()
            _write_secret(
                path,
                private.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ),
            )
        key = load_signing_key(path, service=service)
        public.append(
            EventPublicKey(
                service=service, kid=key.kid, public_key=key.private_key.public_key()
            ).jwk()
        )
    target = folder / PUBLIC_KEYS_FILE
    target.write_text(json.dumps({"keys": public}, indent=2) + "\n")
    return target


def signing_key_path(secrets_dir: Path, service: str) -> Path:
    return secrets_dir / EVENT_KEYS_DIR / f"{service}.key"


def public_keys_path(secrets_dir: Path) -> Path:
    return secrets_dir / EVENT_KEYS_DIR / PUBLIC_KEYS_FILE


def load_signing_key(path: Path, *, service: str) -> EventSigningKey:
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(private, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return EventSigningKey(service=service, kid=key_id(private.public_key()), private_key=private)


def load_public_keys(path: Path) -> dict[str, EventPublicKey]:
    """Every service's public event key, by key id."""
    document = json.loads(path.read_text())
    keys: dict[str, EventPublicKey] = {}
    for jwk in document.get("keys", []):
        public = Ed25519PublicKey.from_public_bytes(_unb64url(jwk["x"]))
        if key_id(public) != jwk["kid"]:
            raise ValueError(f"{path}: key id {jwk['kid']} does not match its key")
        keys[jwk["kid"]] = EventPublicKey(service=jwk["service"], kid=jwk["kid"], public_key=public)
    return keys
