"""The OAuth endpoints (docs/oauth.md): form posts as RFC 6749, 8693 and 7662 have them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Request, Response

from libs.common.web import CurrentPrincipal, Runtime, problems
from services.identity import oauth

router = APIRouter(tags=["oauth"])

Text = Annotated[str | None, Form(max_length=8192)]
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/oauth/token", responses=problems(400, 403, 429))
async def oauth_token(
    response: Response,
    runtime: Runtime,
    grant_type: Annotated[
        Literal["password", "urn:ietf:params:oauth:grant-type:token-exchange"], Form()
    ],
    address: Annotated[str, Depends(_client_address)],
    subject_token: Text = None,
    subject_token_type: Text = None,
    actor_token: Text = None,
    resource: Text = None,
    requested_subject: Text = None,
    scope: Text = None,
    username: Text = None,
    password: Text = None,
) -> dict[str, Any]:
    """The token endpoint: `password` (username = email) or RFC 8693 `token-exchange` (a staff
    token for an acting token on the customer named by `resource=urn:onbehalf:org:<id>`)."""
    response.headers.update(NO_STORE)
    if grant_type == oauth.PASSWORD:
        return await oauth.password_grant(
            runtime=runtime, username=username, password=password, address=address
        )
    return await oauth.exchange(
        runtime=runtime,
        subject_token=subject_token,
        subject_token_type=subject_token_type,
        resource=resource,
        requested_subject=requested_subject,
        scope=scope,
        actor_token=actor_token,
    )


@router.post("/oauth/introspect", responses=problems(400))
async def oauth_introspect(
    response: Response,
    principal: CurrentPrincipal,
    runtime: Runtime,
    token: Text = None,
    token_type_hint: Text = None,
) -> dict[str, Any]:
    """RFC 7662 for resource servers outside the five: they authenticate with a platform
    admin's bearer token (the policy's `introspect_tokens`)."""
    response.headers.update(NO_STORE)
    return await oauth.introspect(runtime=runtime, principal=principal, token=token)
