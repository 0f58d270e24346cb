"""Event signatures: made and checked with libsodium, the same Ed25519 bytes as OpenSSL's, and
every way a signature can be wrong is refused."""

from __future__ import annotations

import base64

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from libs.common.signing import (
    SIGNATURE,
    EventSigningKey,
    SignatureProblem,
    key_id,
    sign_document,
    signing_input,
    verify_signature,
)


def _key(service: str = "orders") -> EventSigningKey:
    private = Ed25519PrivateKey.generate()
    return EventSigningKey(service=service, kid=key_id(private.public_key()), private_key=private)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


DOCUMENT = {"type": "com.onbehalf.orders.order.placed.v2", "data": {"total": "12.50", "é": 1}}


def test_a_signature_is_the_one_openssl_makes_and_checks() -> None:
    # Ed25519 is deterministic: a verifier outside this code base (OpenSSL, the CLI's users)
    # must accept what the services sign, and the services what they sign.
    key = _key()
    message = signing_input(DOCUMENT)
    ours = key.sign(message)
    assert ours == key.private_key.sign(message)
    key.private_key.public_key().verify(ours, message)  # raises if OpenSSL disagreed
    assert key.public().verify(key.private_key.sign(message), message)


def test_a_signed_document_proves_its_signer() -> None:
    key = _key("cart")
    signed = sign_document(DOCUMENT, key)
    assert verify_signature(signed, {key.kid: key.public()}) == "cart"


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda d: {**d, "data": {"total": "0.01", "é": 1}}, id="changed data"),
        pytest.param(lambda d: {**d, "type": "com.onbehalf.orders.x.v2"}, id="changed type"),
        pytest.param(
            lambda d: {
                **d,
                SIGNATURE: d[SIGNATURE][:-2] + ("AA" if d[SIGNATURE][-2:] != "AA" else "BA"),
            },
            id="flipped signature bytes",
        ),
        pytest.param(lambda d: {**d, SIGNATURE: d[SIGNATURE][:40]}, id="short signature"),
        pytest.param(lambda d: {**d, SIGNATURE: "not base64url!*"}, id="not base64url"),
        pytest.param(lambda d: {**d, SIGNATURE: _b64url(bytes(64))}, id="zero signature"),
    ],
)
def test_a_spoiled_document_is_refused(spoil: object) -> None:
    key = _key()
    signed = sign_document(DOCUMENT, key)
    spoiled = spoil(signed)  # type: ignore[operator]
    with pytest.raises(SignatureProblem, match="does not match"):
        verify_signature(spoiled, {key.kid: key.public()})
    # and OpenSSL agrees that it does not verify
    with pytest.raises((InvalidSignature, ValueError)):
        raw = base64.urlsafe_b64decode(spoiled[SIGNATURE] + "=" * (-len(spoiled[SIGNATURE]) % 4))
        key.private_key.public_key().verify(raw, signing_input(spoiled))


def test_another_services_key_does_not_verify_under_the_signers_kid() -> None:
    signer, other = _key("orders"), _key("cart")
    signed = sign_document(DOCUMENT, signer)
    with pytest.raises(SignatureProblem, match="does not match"):
        # the kid names orders' key, the key found under it is cart's
        verify_signature(signed, {signer.kid: other.public()})
