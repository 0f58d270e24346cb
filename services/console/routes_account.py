"""Everyone's "My account" page (a staff member's default company, the personal login link)
and signing in with a personal login link."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.console import service, service_org
from services.console.pages import (
    begin_session,
    checked_form,
    current,
    ensure_acting,
    failed,
    redirect,
    render,
    services_of,
    set_cookie,
    signed_in,
    store,
)
from services.console.schemas import BrowserSession, ServiceError

router = APIRouter()


async def _account_page(
    request: Request,
    session: BrowserSession,
    *,
    status: int = 200,
    error: str | None = None,
    link: dict[str, Any] | None = None,
) -> HTMLResponse:
    await ensure_acting(request, session)
    services = services_of(request)
    # One's own preferences, asked with one's own token (an acting session has none).
    token = session.token or ""
    try:
        prefs = await service_org.preferences(services, token=token)
        companies: list[dict[str, Any]] = []
        if session.is_staff:
            found = await service.customers(services, token=token, q=None, cursor=None)
            companies = list(found["items"])
    except ServiceError as exc:
        refused = await failed(request, session, exc)
        return render(request, "error.html", session, status=exc.status, error=refused)
    return render(
        request,
        "account.html",
        session,
        status=status,
        error=error,
        prefs=prefs,
        companies=companies,
        link=link,
    )


@router.get("/account")
async def account(request: Request) -> HTMLResponse:
    return await _account_page(request, signed_in(request))


@router.post("/account/preferences")
async def preferences(request: Request) -> Response:
    session = signed_in(request)
    form = await checked_form(request, session)
    change: dict[str, Any] = {}
    if "default_customer_org_id" in form:
        change["default_customer_org_id"] = form["default_customer_org_id"] or None
    for name in ("after_login", "mode"):
        if form.get(name):
            change[name] = form[name]
    if form.get("login_link") in ("yes", "no"):
        change["login_link"] = form["login_link"] == "yes"
    try:
        await service_org.set_preferences(
            services_of(request), token=session.token or "", change=change
        )
    except ServiceError as exc:
        refused = await failed(request, session, exc)
        return await _account_page(request, session, status=exc.status, error=refused)
    session.flash.append("Your preferences are saved.")
    return redirect("/account")


@router.post("/account/login-link")
async def login_link(request: Request) -> Response:
    """Make a new link (the old one stops working) or revoke it. A new link is shown on this
    answer only: it is a credential, the console keeps no copy."""
    session = signed_in(request)
    form = await checked_form(request, session)
    services, token = services_of(request), session.token or ""
    try:
        if form.get("action") == "revoke":
            await service_org.revoke_login_link(services, token=token)
        else:
            made = await service_org.create_login_link(services, token=token)
            return await _account_page(request, session, status=201, link=made)
    except ServiceError as exc:
        refused = await failed(request, session, exc)
        return await _account_page(request, session, status=exc.status, error=refused)
    session.flash.append("Your login link is revoked: it no longer signs anyone in.")
    return redirect("/account")


# ---------------------------------------------------------------- signing in with a link


@router.get("/login-link")
async def login_link_page(request: Request) -> Response:
    """The bookmarked link: its secret is after `#`, which browsers never send; the page's
    one script moves it into the form (without script, paste the link into the field)."""
    session = current(request) or store(request).new()
    response = render(request, "login_link.html", session)
    set_cookie(request, response, session)
    return response


@router.post("/login-link")
async def login_with_link(request: Request) -> Response:
    session = current(request)
    if session is None:
        return redirect("/login-link")
    form = await checked_form(request, session)
    # The whole bookmarked address pasted, or only its secret.
    secret = form.get("secret", "").strip().rsplit("#", 1)[-1]
    try:
        answer = await service_org.sign_in_with_link(services_of(request), secret=secret)
    except ServiceError as exc:
        # Identity's words (and reason): the console judges nothing.
        message = "That is not a login link." if exc.status == 422 else exc.message
        return render(request, "login_link.html", session, status=exc.status, error=message)
    return await begin_session(request, session, answer)
