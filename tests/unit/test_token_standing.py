"""A token is weighed against the standing of its user and organisation by generation."""

from __future__ import annotations

import pytest

from libs.common.errors import Unauthenticated
from libs.common.principals import CustomerUser
from libs.common.revocation import RevocationSet, Standing, org_key, user_key
from libs.common.tokens import TokenVerifier


def _verifier(*entries: tuple[str, Standing]) -> TokenVerifier:
    revoked = RevocationSet()
    for key, standing in entries:
        revoked.apply(key, standing.encode())
    return TokenVerifier(issuer="test", audience="test", revoked=revoked)


def _buyer(generation: int, org_generation: int = 0) -> CustomerUser:
    return CustomerUser(
        id="u1", org_id="o1", name="Buyer", generation=generation, org_generation=org_generation
    )


@pytest.mark.parametrize(
    ("standing", "token_generation", "refused"),
    [
        (Standing(2, active=False), 1, "deactivated"),  # issued before the deactivation
        (Standing(2, active=False), 2, "deactivated"),
        (Standing(2, active=True), 1, "rights have changed"),
        (Standing(2, active=True), 2, None),
        # Issued after a reactivation (generation 3) this service has not heard of yet.
        (Standing(2, active=False), 3, None),
    ],
)
def test_the_users_standing(standing: Standing, token_generation: int, refused: str | None) -> None:
    verifier = _verifier((user_key("u1"), standing))
    if refused is None:
        verifier._check_current(_buyer(token_generation))
    else:
        with pytest.raises(Unauthenticated, match=refused):
            verifier._check_current(_buyer(token_generation))


@pytest.mark.parametrize(
    ("standing", "org_generation", "refused"),
    [
        (Standing(4, active=False), 4, "not active"),
        (Standing(4, active=True), 3, "organisation has changed"),
        (Standing(4, active=False), 5, None),
    ],
)
def test_the_organisations_standing(
    standing: Standing, org_generation: int, refused: str | None
) -> None:
    verifier = _verifier((org_key("o1"), standing))
    if refused is None:
        verifier._check_current(_buyer(1, org_generation))
    else:
        with pytest.raises(Unauthenticated, match=refused):
            verifier._check_current(_buyer(1, org_generation))
