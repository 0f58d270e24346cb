"""A user's own preferences (default customer after login, login-link opt-in) and personal
login link: thin; decisions live in preferences.py, login_links.py and the policy."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from libs.common.web import CurrentPrincipal, Runtime, problems
from services.identity import login_links, preferences
from services.identity.login_links import LoginLinkCreated, LoginLinkLogin
from services.identity.preferences import LoginRead, PreferencesRead, PreferencesWrite

router = APIRouter(tags=["self"])


@router.get("/v1/me/preferences")
async def get_preferences(principal: CurrentPrincipal, runtime: Runtime) -> PreferencesRead:
    return await preferences.get_preferences(runtime=runtime, principal=principal)


@router.put("/v1/me/preferences")
async def set_preferences(
    body: PreferencesWrite, principal: CurrentPrincipal, runtime: Runtime
) -> PreferencesRead:
    return await preferences.set_preferences(runtime=runtime, principal=principal, body=body)


@router.post("/v1/me/login-link", status_code=status.HTTP_201_CREATED)
async def create_login_link(principal: CurrentPrincipal, runtime: Runtime) -> LoginLinkCreated:
    """A new personal login link (the previous one stops working)."""
    return await login_links.create(runtime=runtime, principal=principal)


@router.delete("/v1/me/login-link", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_login_link(principal: CurrentPrincipal, runtime: Runtime) -> Response:
    await login_links.revoke(runtime=runtime, principal=principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/v1/auth/login-link", tags=["tokens"], responses=problems(401))
async def login_with_link(body: LoginLinkLogin, request: Request, runtime: Runtime) -> LoginRead:
    """Log in with a personal login link's secret (audited with the client address)."""
    address = request.client.host if request.client else "unknown"
    return await login_links.login(runtime=runtime, secret=body.token, address=address)
