"""What every way of logging in shares (password, login link, accepted invitation): the
attempt's audit context, whether the account may still log in, and the login token."""

from __future__ import annotations

import time
from uuid import uuid4

from libs.common.events import EventContext
from libs.common.principals import CustomerUser, Principal
from libs.common.runtime import ServiceRuntime
from libs.common.tokens import claims_of
from services.identity.models import Organization, User
from services.identity.org_people import principal_of
from services.identity.parts import identity_parts
from services.identity.schemas import TokenRead
from services.identity.settings import identity_settings

# Why an account that proved itself may still not log in: the reason, and what a password
# login says (a login link answers its own refusal with the reason).
NOT_ACTIVE = {
    "user_inactive": "this user is deactivated",
    "organisation_inactive": "this user's organisation is not active",
}


def attempt_context(runtime: ServiceRuntime, user: User | None) -> EventContext:
    """A login event's actor is the account tried (when it exists); its subject the customer
    organisation of a customer user."""
    customer = user is not None and user.kind != "staff"
    return EventContext(
        actor_id=user.id if user else None,
        actor_org_id=user.org_id if user else None,
        subject_org_id=user.org_id if customer and user else None,
        subject_user_id=user.id if customer and user else None,
        acting_session_id=None,
        policy_revision=runtime.authorizer.revision,
    )


def not_active(user: User, org: Organization | None) -> str | None:
    """Why this user may not log in now although their credential is right, or None."""
    if not user.active:
        return "user_inactive"
    if org is None or org.status != "active":
        return "organisation_inactive"
    return None


def login_principal(user: User, org: Organization, *, login_session_id: str) -> Principal:
    """What a login token says: the user's rights now, their generations, a new login session."""
    principal = principal_of(user)
    if isinstance(principal, CustomerUser):
        principal.org_generation = org.generation
    principal.login_session_id = login_session_id
    return principal


async def issue_login_token(*, runtime: ServiceRuntime, user: User, org: Organization) -> TokenRead:
    """The access token of a user whose credential the caller has just checked."""
    lifetime = identity_settings(runtime).access_token_seconds
    principal = login_principal(user, org, login_session_id=str(uuid4()))
    signer = identity_parts(runtime).signer
    token = signer.sign(claims_of(principal), expires_at=time.time() + lifetime)
    return TokenRead(access_token=token, expires_in=lifetime)
