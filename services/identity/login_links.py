"""Personal login links: a bookmarkable link that logs its user in without a password.

Offered where the platform allows it (`ONBEHALF_LOGIN_LINKS_ENABLED`) to a user who opted in
(`PUT /v1/me/preferences {"login_link": true}`); refused to staff who can act for customers
unless `ONBEHALF_LOGIN_LINKS_FOR_ACTING_STAFF` says so (policies/self_service.polar,
docs/decisions.md). The secret is 32 random bytes; only its SHA-256 is stored. One link per
user: making a new one replaces the old (which stops working); revoking deletes it. Every
use, successful or not, is audited with the client address. Each use is checked again: the
platform setting, the opt-in and the policy must still allow the link, the user and their
organisation must still be active.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy import delete, select

from libs.common.clock import utcnow
from libs.common.errors import Forbidden, Unauthenticated
from libs.common.principals import ActingSession, Principal
from libs.common.resources import Account, LoginLink
from libs.common.runtime import ServiceRuntime
from libs.contracts.identity import LoginLinkIssued, LoginLinkRevoked, LoginLinkUsed
from services.identity.login_tokens import attempt_context, issue_login_token, not_active
from services.identity.models import LoginLink as LoginLinkRow
from services.identity.models import Organization, User, UserPreferences
from services.identity.org_people import principal_of as _principal_of
from services.identity.preferences import LoginRead, after_login
from services.identity.schemas import Strict
from services.identity.settings import identity_settings

REFUSED = "this login link is not valid: it was revoked, replaced, or never existed"


class LoginLinkCreated(BaseModel):
    # Bookmark this: the secret is after `#`, so it never reaches a server's access log.
    url: str
    # The same secret for API clients: `POST /v1/auth/login-link {"token": ...}`.
    token: str
    created_at: datetime


class LoginLinkLogin(Strict):
    token: str = Field(min_length=20, max_length=200)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _resource(runtime: ServiceRuntime, user_id: str, org_id: str, opted_in: bool) -> LoginLink:
    settings = identity_settings(runtime)
    return LoginLink(
        user_id=user_id,
        org_id=org_id,
        platform_allows=settings.login_links_enabled,
        allowed_for_acting_staff=settings.login_links_for_acting_staff,
        opted_in=opted_in,
    )


async def create(*, runtime: ServiceRuntime, principal: Principal) -> LoginLinkCreated:
    """A new link for the caller (replacing theirs, if any)."""
    if isinstance(principal, ActingSession):
        # The policy refuses this with its reason: never a link made while acting.
        link = _resource(runtime, principal.actor_id, principal.subject_org_id, False)
        runtime.authorizer.authorize(principal, "create", link)
        raise Forbidden("login links are never made while acting on behalf of a customer")
    async with runtime.reading() as session:
        prefs = await session.get(UserPreferences, principal.id)
    opted_in = prefs is not None and prefs.login_link_opt_in
    link = _resource(runtime, principal.id, principal.org_id, opted_in)
    runtime.authorizer.authorize(principal, "create", link)
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    async with runtime.unit_of_work() as uow:
        row = await uow.session.get(LoginLinkRow, principal.id)
        replaced = row is not None
        if row is None:
            row = LoginLinkRow(user_id=principal.id)
            uow.session.add(row)
        row.secret_hash, row.created_at, row.last_used_at = _hash(secret), now, None
        uow.publish(LoginLinkIssued(user_id=principal.id, replaced=replaced), principal)
    base = identity_settings(runtime).console_url.rstrip("/")
    return LoginLinkCreated(url=f"{base}/login-link#{secret}", token=secret, created_at=now)


async def revoke(*, runtime: ServiceRuntime, principal: Principal) -> None:
    """The caller's link stops working (a link is a credential: change_credentials)."""
    user_id = principal.actor_id if isinstance(principal, ActingSession) else principal.id
    org_id = principal.actor_org_id if isinstance(principal, ActingSession) else principal.org_id
    runtime.authorizer.authorize(
        principal, "change_credentials", Account(user_id=user_id, org_id=org_id)
    )
    async with runtime.unit_of_work() as uow:
        result = await uow.session.execute(
            delete(LoginLinkRow).where(LoginLinkRow.user_id == user_id)
        )
        if getattr(result, "rowcount", 0):
            uow.publish(LoginLinkRevoked(user_id=user_id), principal)


async def _refusal(
    runtime: ServiceRuntime,
    user: User | None,
    prefs: UserPreferences | None,
    org: Organization | None,
) -> str | None:
    """Why this link does not log its user in now, or None."""
    if user is None:
        return "unknown_link"
    inactive = not_active(user, org)
    if inactive is not None:
        return inactive
    link = _resource(runtime, user.id, user.org_id, prefs is not None and prefs.login_link_opt_in)
    # The user's rights as stored now: a rep who has since gained acting rights loses the link.
    decision = runtime.authorizer.decide(_principal_of(user), "create", link)
    return None if decision.allowed else f"policy: {decision.reason}"


async def login(*, runtime: ServiceRuntime, secret: str, address: str) -> LoginRead:
    """Log in with a link: audited with the address, allowed or refused (401)."""
    digest = _hash(secret)
    async with runtime.unit_of_work() as uow:
        row = await uow.session.scalar(
            select(LoginLinkRow).where(LoginLinkRow.secret_hash == digest)
        )
        user = await uow.session.get(User, row.user_id) if row else None
        prefs = await uow.session.get(UserPreferences, user.id) if user else None
        org = await uow.session.get(Organization, user.org_id) if user else None
        why = await _refusal(runtime, user, prefs, org)
        if row is not None and why is None:
            row.last_used_at = utcnow()
        uow.publish(
            LoginLinkUsed(user_id=user.id if user else None, address=address, refused=why),
            attempt_context(runtime, user),
        )
    if why is not None or user is None or org is None:
        raise Unauthenticated(REFUSED, reason=why)
    issued = await issue_login_token(runtime=runtime, user=user, org=org)
    return await after_login(runtime=runtime, issued=issued)
