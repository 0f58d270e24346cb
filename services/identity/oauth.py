"""OAuth where OAuth has a word for it (docs/oauth.md): the token endpoint's grants (RFC 6749
password, RFC 8693 token exchange: a staff token for an acting token) and RFC 7662 token
introspection for resource servers outside the five. The decisions are the policy's, as on
the JSON endpoints these mirror."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jwt

from libs.common.errors import Forbidden, NotFound, OAuthError, Unauthenticated
from libs.common.principals import ActingSession, Principal, StaffUser
from libs.common.resources import Administration
from libs.common.runtime import ServiceRuntime
from services.identity import acting_sessions, login
from services.identity.schemas import Mode

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
PASSWORD = "password"
ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"
JWT_TOKEN = "urn:ietf:params:oauth:token-type:jwt"
# A customer organisation as an RFC 8693 `resource`: urn:onbehalf:org:<org id>.
ORG_URN = "urn:onbehalf:org:"
SCOPES: dict[str, Mode] = {"acting:full": "full", "acting:view": "view"}
TOKENS = Administration(area="tokens")


def _target_org(resource: str | None, requested_subject: str | None) -> str:
    if resource and requested_subject and resource != ORG_URN + requested_subject:
        raise OAuthError("invalid_target", "resource and requested_subject name different orgs")
    if resource:
        if not resource.startswith(ORG_URN) or len(resource) == len(ORG_URN):
            raise OAuthError("invalid_target", f"resource must be {ORG_URN}<customer org id>")
        return resource[len(ORG_URN) :]
    if requested_subject:
        return requested_subject
    raise OAuthError(
        "invalid_request", f"name the customer: resource={ORG_URN}<org id> or requested_subject"
    )


def _mode(scope: str | None) -> Mode:
    if not scope:
        return "full"
    if scope not in SCOPES:
        raise OAuthError("invalid_scope", f"scope is one of {', '.join(SCOPES)}")
    return SCOPES[scope]


async def exchange(
    *,
    runtime: ServiceRuntime,
    subject_token: str | None,
    subject_token_type: str | None,
    resource: str | None,
    requested_subject: str | None,
    scope: str | None,
    actor_token: str | None,
) -> dict[str, Any]:
    """RFC 8693: the staff member's token (subject_token) for an acting token on the customer
    named by `resource` / `requested_subject`; the same decision as POST /v1/acting-as."""
    if not subject_token:
        raise OAuthError("invalid_request", "subject_token is required")
    if subject_token_type not in (ACCESS_TOKEN, JWT_TOKEN):
        raise OAuthError("invalid_request", f"subject_token_type must be {ACCESS_TOKEN}")
    if actor_token:
        # The staff member is the actor and is named by their own token: no second party.
        raise OAuthError("invalid_request", "actor_token is not used: subject_token is the staff's")
    org_id = _target_org(resource, requested_subject)
    mode = _mode(scope)
    try:
        principal = await runtime.verifier.verify_async(subject_token)
    except Unauthenticated as exc:
        raise OAuthError("invalid_request", f"subject_token: {exc.detail}") from exc
    if not isinstance(principal, StaffUser):
        raise OAuthError("invalid_request", "subject_token must be a staff member's login token")
    try:
        started = await acting_sessions.start_acting(
            runtime=runtime, principal=principal, customer_org_id=org_id, mode=mode
        )
    except (Forbidden, NotFound) as exc:
        raise OAuthError("invalid_target", exc.detail, reason=exc.reason) from exc
    seconds = int((started.expires_at - datetime.now(UTC)).total_seconds())
    return {
        "access_token": started.access_token,
        "issued_token_type": ACCESS_TOKEN,
        "token_type": "Bearer",
        "expires_in": max(seconds, 0),
        "scope": f"acting:{started.mode}",
        "session_id": started.session_id,
    }


async def password_grant(
    *, runtime: ServiceRuntime, username: str | None, password: str | None, address: str
) -> dict[str, Any]:
    if not username or not password:
        raise OAuthError("invalid_request", "username and password are required")
    try:
        issued = await login.login(
            runtime=runtime, email=username, password=password, address=address
        )
    except Unauthenticated as exc:
        raise OAuthError("invalid_grant", exc.detail, reason=exc.reason) from exc
    return issued.model_dump()


async def introspect(
    *, runtime: ServiceRuntime, principal: Principal, token: str | None
) -> dict[str, Any]:
    """RFC 7662: `active` and the token's claims, `active: false` for anything expired,
    revoked (an acting session stopped or timed out, a logout, a rights change) or not ours."""
    runtime.authorizer.authorize(principal, "introspect_tokens", TOKENS)
    if not token:
        raise OAuthError("invalid_request", "token is required")
    try:
        verified = await runtime.verifier.verify_async(token)
        if isinstance(verified, ActingSession):
            # Identity knows its sessions: stopped is inactive even before the bucket says so.
            await acting_sessions.current_acting(runtime=runtime, principal=verified)
    except (Unauthenticated, NotFound):
        return {"active": False}
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    answer: dict[str, Any] = {
        "active": True,
        "token_type": "Bearer",
        **{
            name: claims[name]
            for name in ("iss", "sub", "aud", "exp", "iat", "nbf", "jti", "act", "sid", "mode")
            if name in claims
        },
    }
    if isinstance(verified, ActingSession):
        answer["scope"] = f"acting:{verified.mode}"
    return answer
