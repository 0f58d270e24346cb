"""Identity's HTTP routes: thin; every decision is in the business modules and the policy."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response, status

from libs.common.tokens import ALGORITHM
from libs.common.web import CurrentPrincipal, Runtime, problems
from services.identity import (
    accounts,
    administration,
    consent,
    keys,
    login,
    login_sessions,
    preferences,
    session_history,
)
from services.identity import acting_sessions as acting
from services.identity import customers as customer_search
from services.identity.preferences import LoginRead
from services.identity.schemas import (
    ActingContextRead,
    ActingCreate,
    ActingSessionPage,
    ActingSessionRead,
    ActingStarted,
    ConsentUpdate,
    CustomerPage,
    MeRead,
    OrgCreate,
    OrgRead,
    OrgUpdate,
    PasswordChange,
    TokenRead,
    TokenRequest,
    UserCreate,
    UserRead,
    UserUpdate,
)

router = APIRouter()


@router.get("/.well-known/jwks.json", tags=["tokens"])
async def jwks(runtime: Runtime) -> dict[str, Any]:
    return keys.jwks(runtime)


@router.get("/.well-known/openid-configuration", tags=["tokens"])
async def discovery(request: Request, runtime: Runtime) -> dict[str, Any]:
    """OpenID-style discovery: where the keys and the token endpoint are, which algorithm."""
    base = str(request.base_url).rstrip("/")
    return {
        "issuer": runtime.settings.token_issuer,
        "jwks_uri": f"{base}/.well-known/jwks.json",
        # The v1 JSON endpoint stays the advertised one (v1 clients); OAuth clients post forms
        # to the RFC 6749/8693 endpoint (docs/api.md#oauth).
        "token_endpoint": f"{base}/v1/auth/token",
        "oauth_token_endpoint": f"{base}/oauth/token",
        "introspection_endpoint": f"{base}/oauth/introspect",
        "introspection_endpoint_auth_methods_supported": ["bearer"],
        "token_endpoint_auth_methods_supported": ["none"],
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "token_endpoint_auth_signing_alg_values_supported": [ALGORITHM],
        "grant_types_supported": ["password", "urn:ietf:params:oauth:grant-type:token-exchange"],
        "scopes_supported": ["acting:full", "acting:view"],
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
    }


@router.post("/v1/keys/rotate", tags=["tokens"])
async def rotate_keys(principal: CurrentPrincipal, runtime: Runtime) -> dict[str, Any]:
    """Platform admins: sign with a new key now; the old one is published until its tokens end."""
    return await keys.rotate_now(runtime=runtime, principal=principal)


@router.post("/v1/auth/token", tags=["tokens"], responses=problems(401, 429))
async def token(body: TokenRequest, request: Request, runtime: Runtime) -> LoginRead:
    """429 with Retry-After once the account or the client address failed too often. A staff
    member whose preference is `after_login: default_customer` also gets an acting session
    for that customer, or the reason there is none (preferences.py)."""
    address = request.client.host if request.client else "unknown"
    issued = await login.login(
        runtime=runtime, email=body.email, password=body.password, address=address
    )
    return await preferences.after_login(runtime=runtime, issued=issued)


@router.post("/v1/auth/logout", status_code=status.HTTP_204_NO_CONTENT, tags=["tokens"])
async def logout(principal: CurrentPrincipal, runtime: Runtime) -> Response:
    """End this login session and every acting session started from it, in every service."""
    await login_sessions.logout(runtime=runtime, principal=principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/me", tags=["self"])
async def me(principal: CurrentPrincipal, runtime: Runtime) -> MeRead:
    return await accounts.me(runtime=runtime, principal=principal)


@router.get("/v1/customers", tags=["acting-as"])
async def customers(
    principal: CurrentPrincipal,
    runtime: Runtime,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=20)] = 20,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> CustomerPage:
    return await customer_search.list_customers(
        runtime=runtime, principal=principal, q=q, limit=limit, cursor=cursor
    )


@router.post(
    "/v1/acting-as",
    status_code=status.HTTP_201_CREATED,
    tags=["acting-as"],
    responses=problems(404),
)
async def start_acting(
    body: ActingCreate, principal: CurrentPrincipal, runtime: Runtime
) -> ActingStarted:
    return await acting.start_acting(
        runtime=runtime,
        principal=principal,
        customer_org_id=body.customer_org_id,
        mode=body.mode,
    )


@router.post(
    "/v1/acting-as/switch",
    status_code=status.HTTP_201_CREATED,
    tags=["acting-as"],
    responses=problems(404),
)
async def switch_acting(
    body: ActingCreate, principal: CurrentPrincipal, runtime: Runtime
) -> ActingStarted:
    """With an acting token: end this session and start one for another customer."""
    return await acting.switch_acting(
        runtime=runtime,
        principal=principal,
        customer_org_id=body.customer_org_id,
        mode=body.mode,
    )


@router.get("/v1/orgs/{org_id}/acting-sessions", tags=["acting-as"])
async def acting_sessions(
    org_id: str,
    principal: CurrentPrincipal,
    runtime: Runtime,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> ActingSessionPage:
    """Every acting session staff held on the organisation: for its admins (transparency)."""
    return await session_history.list_acting_sessions(
        runtime=runtime, principal=principal, org_id=org_id, limit=limit, cursor=cursor
    )


@router.get("/v1/orgs/{org_id}", tags=["self"])
async def read_org(org_id: str, principal: CurrentPrincipal, runtime: Runtime) -> OrgRead:
    """The organisation's settings, consent included (for the remote-assistance page)."""
    return await consent.read_org(runtime=runtime, principal=principal, org_id=org_id)


@router.get("/v1/me/acting-sessions/{session_id}", tags=["self"])
async def own_acting_session(
    session_id: Annotated[str, Path(min_length=1, max_length=64)],
    principal: CurrentPrincipal,
    runtime: Runtime,
) -> ActingSessionRead:
    """An acting session the caller held (signed in as themselves): when and why it ended."""
    return await session_history.own_acting_session(
        runtime=runtime, principal=principal, session_id=session_id
    )


@router.put("/v1/orgs/{org_id}/consent", tags=["self"])
async def set_consent(
    org_id: str, body: ConsentUpdate, principal: CurrentPrincipal, runtime: Runtime
) -> OrgRead:
    """The customer's admin allows or refuses remote assistance for the whole organisation."""
    return await consent.set_consent(
        runtime=runtime,
        principal=principal,
        org_id=org_id,
        allow_assistance=body.allow_assistance,
    )


@router.post("/v1/me/password", tags=["self"])
async def change_password(
    body: PasswordChange, principal: CurrentPrincipal, runtime: Runtime
) -> TokenRead:
    """Every other session of the user ends; the answer is this session's new token."""
    return await accounts.change_password(
        runtime=runtime,
        principal=principal,
        current_password=body.current_password,
        new_password=body.new_password,
    )


@router.put("/v1/me/password", status_code=status.HTTP_204_NO_CONTENT, tags=["self"])
async def replace_password(
    body: PasswordChange, principal: CurrentPrincipal, runtime: Runtime
) -> Response:
    """The earlier form: every session ends, the caller's too (no new token is returned)."""
    await accounts.change_password(
        runtime=runtime,
        principal=principal,
        current_password=body.current_password,
        new_password=body.new_password,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/acting-as/current", tags=["acting-as"], responses=problems(404))
async def current_acting(principal: CurrentPrincipal, runtime: Runtime) -> ActingContextRead:
    return await acting.current_acting(runtime=runtime, principal=principal)


@router.delete(
    "/v1/acting-as/current",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["acting-as"],
    responses=problems(404),
)
async def stop_acting(principal: CurrentPrincipal, runtime: Runtime) -> Response:
    await acting.stop_acting(runtime=runtime, principal=principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/v1/orgs",
    status_code=status.HTTP_201_CREATED,
    tags=["administration"],
    responses=problems(409),
)
async def create_org(body: OrgCreate, principal: CurrentPrincipal, runtime: Runtime) -> OrgRead:
    return await administration.create_org(runtime=runtime, principal=principal, body=body)


@router.patch("/v1/orgs/{org_id}", tags=["administration"], responses=problems(409))
async def update_org(
    org_id: str, body: OrgUpdate, principal: CurrentPrincipal, runtime: Runtime
) -> OrgRead:
    return await administration.update_org(
        runtime=runtime, principal=principal, org_id=org_id, body=body
    )


@router.post(
    "/v1/users",
    status_code=status.HTTP_201_CREATED,
    tags=["administration"],
    # 404: the body's org_id names no organisation.
    responses=problems(404, 409),
)
async def create_user(body: UserCreate, principal: CurrentPrincipal, runtime: Runtime) -> UserRead:
    return await administration.create_user(runtime=runtime, principal=principal, body=body)


@router.patch("/v1/users/{user_id}", tags=["administration"])
async def update_user(
    user_id: str, body: UserUpdate, principal: CurrentPrincipal, runtime: Runtime
) -> UserRead:
    return await administration.update_user(
        runtime=runtime, principal=principal, user_id=user_id, body=body
    )


@router.put(
    "/v1/orgs/{org_id}/caretakers/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["administration"],
)
async def assign_caretaker(
    org_id: str, user_id: str, principal: CurrentPrincipal, runtime: Runtime
) -> Response:
    await administration.assign_caretaker(
        runtime=runtime, principal=principal, org_id=org_id, user_id=user_id
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/v1/orgs/{org_id}/caretakers/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["administration"],
)
async def remove_caretaker(
    org_id: str, user_id: str, principal: CurrentPrincipal, runtime: Runtime
) -> Response:
    await administration.remove_caretaker(
        runtime=runtime, principal=principal, org_id=org_id, user_id=user_id
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
