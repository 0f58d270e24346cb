"""Event signing: each service signs what it emits with its own Ed25519 key; audit knows them all."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cloudevents.core.v1.event import CloudEvent
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

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


# Keys are kept and written with `cryptography` (PEM, JWK); every event is signed and checked
# with libsodium (PyNaCl) instead. Ed25519 is the same scheme, so the signatures are the same
# bytes, but OpenSSL 3 sets up a context per call: on this machine a check costs ≈ 125 µs
# through it and ≈ 60 µs through libsodium, a signature ≈ 38 and ≈ 25 µs (docs/decisions.md).


@dataclass(frozen=True, slots=True)
class EventSigningKey:
    """A service's private key and the id published beside its public half."""

    service: str
    kid: str
    private_key: Ed25519PrivateKey
    _signer: SigningKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        raw = self.private_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        object.__setattr__(self, "_signer", SigningKey(raw))

    def sign(self, message: bytes) -> bytes:
        """The Ed25519 signature of `message` (64 bytes)."""
        return self._signer.sign(message).signature

    def public(self) -> EventPublicKey:
        return EventPublicKey(
            service=self.service, kid=self.kid, public_key=self.private_key.public_key()
        )


@dataclass(frozen=True, slots=True)
class EventPublicKey:
    service: str
    kid: str
    public_key: Ed25519PublicKey
    _verifier: VerifyKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        raw = self.public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        object.__setattr__(self, "_verifier", VerifyKey(raw))

    def verify(self, signature: bytes, message: bytes) -> bool:
        """Whether `signature` is this key's Ed25519 signature of `message`."""
        try:
            self._verifier.verify(message, signature)
        except (BadSignatureError, ValueError):  # ValueError: not 64 bytes
            return False
        return True

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


# --- signed events -------------------------------------------------------------------------
#
# An event's signature covers its canonical envelope: every CloudEvents attribute (the
# key id `signaturekid` included) except `signature` itself, plus `data`, as one JSON object
# with sorted keys, compact separators, UTF-8 (no \u escapes), timestamps in UTC ending in `Z`.
# docs/audit.md spells it out for verifiers outside this code base.

SIGNATURE = "signature"
SIGNATURE_KID = "signaturekid"


class SignatureProblem(ValueError):
    """Why a signed document (an event or a checkpoint) does not prove its origin."""


def iso_utc(moment: datetime) -> str:
    """RFC 3339 in UTC with `Z`, microseconds only when there are some (Python's isoformat)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def canonical_json(value: Mapping[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def envelope_object(event: CloudEvent) -> dict[str, Any]:
    """The event as a JSON object: its attributes (times rendered by `iso_utc`) and its data."""
    return _envelope(event.get_attributes(), event.get_data())


def _envelope(attributes: Mapping[str, Any], data: Any) -> dict[str, Any]:
    envelope: dict[str, Any] = {}
    for key, value in attributes.items():
        envelope[key] = iso_utc(value) if isinstance(value, datetime) else value
    if isinstance(data, bytes | bytearray):
        # CloudEvents' own JSON spelling of binary data; JSON cannot hold bytes.
        envelope["data_base64"] = base64.b64encode(data).decode()
    else:
        envelope["data"] = data
    return envelope


def signing_input(document: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers: the canonical JSON of `document` without `signature`."""
    return canonical_json({k: v for k, v in document.items() if k != SIGNATURE}).encode()


def sign_event(event: CloudEvent, key: EventSigningKey) -> CloudEvent:
    """`event` with `signaturekid` and `signature` (Ed25519, base64url) added."""
    attributes = dict(event.get_attributes())
    sign_attributes(attributes, event.get_data(), key)
    return CloudEvent(attributes, event.get_data())


def sign_attributes(attributes: dict[str, Any], data: Any, key: EventSigningKey) -> None:
    """Add `signaturekid` and `signature` to the attributes of an event about to be built."""
    attributes[SIGNATURE] = signed_envelope(attributes, data, key)[SIGNATURE]


def signed_envelope(attributes: dict[str, Any], data: Any, key: EventSigningKey) -> dict[str, Any]:
    """The envelope of an event about to be built, signed: `signaturekid` is added to
    `attributes`, `signature` to the envelope (what the CloudEvents JSON format carries)."""
    attributes.pop(SIGNATURE, None)
    attributes[SIGNATURE_KID] = key.kid
    envelope = _envelope(attributes, data)
    # canonical_json(envelope) is signing_input(envelope): it has no signature yet.
    envelope[SIGNATURE] = _b64url(key.sign(canonical_json(envelope).encode()))
    return envelope


def sign_document(document: Mapping[str, Any], key: EventSigningKey) -> dict[str, Any]:
    """A JSON object (e.g. an audit checkpoint) signed the way events are."""
    signed = {k: v for k, v in document.items() if k != SIGNATURE}
    signed[SIGNATURE_KID] = key.kid
    signed[SIGNATURE] = _b64url(key.sign(signing_input(signed)))
    return signed


def verify_signature(document: Mapping[str, Any], keys: Mapping[str, EventPublicKey]) -> str:
    """The service whose key signed `document` (an event envelope or a checkpoint).

    Raises SignatureProblem when it is unsigned, names an unknown key, or does not match."""
    kid, signature = document.get(SIGNATURE_KID), document.get(SIGNATURE)
    if not isinstance(signature, str) or not signature:
        raise SignatureProblem("not signed (no signature attribute)")
    if not isinstance(kid, str) or not kid:
        raise SignatureProblem("no signaturekid names the signing key")
    key = keys.get(kid)
    if key is None:
        raise SignatureProblem(f"signed with an unknown key {kid!r}")
    try:
        matches = key.verify(_unb64url(signature), signing_input(document))
    except ValueError:  # not base64url
        matches = False
    if not matches:
        raise SignatureProblem(f"the signature does not match (key {kid} of {key.service})")
    return key.service
