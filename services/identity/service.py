"""Identity's dependencies (the `Identity` its business modules take) and the login token."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from uuid import uuid4

from libs.common.principals import CustomerUser, Principal
from libs.common.runtime import ServiceRuntime
from libs.common.tokens import claims_of
from services.identity.keys import Signer
from services.identity.models import Organization, User
from services.identity.org_people import principal_of as _principal_of
from services.identity.passwords import AddressGate, PasswordPool
from services.identity.schemas import TokenRead
from services.identity.settings import IdentitySettings


@dataclass
class Identity:
    """What identity's functions need besides the shared runtime."""

    runtime: ServiceRuntime
    signer: Signer
    settings: IdentitySettings
    # scrypt off the event loop, on a few threads (login.py, user creation, password change).
    passwords: PasswordPool = field(default_factory=PasswordPool)
    login_gate: AddressGate = field(default_factory=AddressGate)


def login_principal(user: User, org: Organization, *, login_session_id: str) -> Principal:
    """What a login token says: the user's rights now, their generations, a new login session."""
    principal = _principal_of(user)
    if isinstance(principal, CustomerUser):
        principal.org_generation = org.generation
    principal.login_session_id = login_session_id
    return principal


async def issue_login_token(*, identity: Identity, user: User, org: Organization) -> TokenRead:
    """The access token of a user whose password login.py has just checked."""
    lifetime = identity.settings.access_token_seconds
    principal = login_principal(user, org, login_session_id=str(uuid4()))
    token = identity.signer.sign(claims_of(principal), expires_at=time.time() + lifetime)
    return TokenRead(access_token=token, expires_in=lifetime)
