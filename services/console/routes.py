"""Signing in and out, the company list, and starting, switching and stopping acting sessions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.console import service
from services.console.pages import (
    begin_session,
    checked_form,
    current,
    ensure_acting,
    failed,
    home_of,
    redirect,
    render,
    services_of,
    set_cookie,
    signed_in,
    store,
)
from services.console.schemas import BrowserSession, ServiceError

router = APIRouter()


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    # "service" as every service's /healthz says it: whoever started it checks who answers.
    return {"status": "ok", "service": "console"}


@router.get("/readyz", include_in_schema=False)
async def readyz() -> dict[str, object]:
    """Ready as soon as it answers: the console holds no connection of its own (it calls the
    five services per request, and shows their refusals)."""
    return {"status": "ready", "service": "console", "checks": {}, "not_ready": []}


@router.get("/")
async def home(request: Request) -> Response:
    session = current(request)
    if session is None or not session.signed_in:
        return redirect("/login")
    return redirect(home_of(session))


@router.get("/login")
async def login_page(request: Request) -> Response:
    session = current(request) or store(request).new()
    if session.signed_in:
        return redirect(home_of(session))
    response = render(request, "login.html", session)
    set_cookie(request, response, session)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    session = current(request)
    if session is None:
        # No pre-sign-in session (cookie missing or expired): start again from the form.
        return redirect("/login")
    form = await checked_form(request, session)
    services = services_of(request)
    email = form.get("email", "").strip()
    try:
        answer = await service.sign_in(services, email=email, password=form.get("password", ""))
        return await begin_session(request, session, answer)
    except ServiceError as exc:
        if exc.status in (400, 401, 422):
            # The same words for an unknown address and a wrong password: nothing leaks.
            message = "Wrong email or password."
        elif exc.status == 429:
            message = "Too many attempts: wait a little and try again."
        else:
            message = f"Signing in failed: {exc.message}"
        return render(request, "login.html", session, status=exc.status, error=message, email=email)


@router.post("/logout")
async def logout(request: Request) -> Response:
    session = signed_in(request)
    await checked_form(request, session)
    services = services_of(request)
    try:
        if session.acting:
            await service.stop_acting(services, acting_token=session.acting.token)
    except ServiceError:
        pass  # already ended; signing out goes on
    try:
        if session.token:
            await service.sign_out(services, token=session.token)
    except ServiceError:
        pass  # an ended login session is what signing out wants anyway
    store(request).drop(session)
    fresh = store(request).new()
    fresh.flash.append("You are signed out.")
    response = redirect("/login")
    set_cookie(request, response, fresh)
    return response


def _cursor_of(session: BrowserSession, q: str, page: int) -> tuple[int, str | None]:
    cursors = session.company_cursors.setdefault(q, [None])
    if page < 0 or page >= len(cursors):
        return 0, None
    return page, cursors[page]


@router.get("/companies")
async def companies(request: Request, q: str = "", page: int = 0) -> HTMLResponse:
    session = signed_in(request)
    await ensure_acting(request, session)
    q = q.strip()[:200]
    page, cursor = _cursor_of(session, q, page)
    try:
        found = await service.customers(
            services_of(request), token=session.token or "", q=q or None, cursor=cursor
        )
    except ServiceError as exc:
        error = await failed(request, session, exc)
        return render(
            request,
            "companies.html",
            session,
            status=exc.status,
            error=error,
            items=[],
            q=q,
            page=page,
            has_next=False,
        )
    cursors = session.company_cursors[q]
    if found["next_cursor"]:
        del cursors[page + 1 :]
        cursors.append(found["next_cursor"])
    return render(
        request,
        "companies.html",
        session,
        items=found["items"],
        q=q,
        page=page,
        has_next=bool(found["next_cursor"]),
    )


@router.post("/acting")
async def start_acting(request: Request) -> Response:
    session = signed_in(request)
    form = await checked_form(request, session)
    try:
        session.acting = await service.start_acting(
            services_of(request),
            token=session.token or "",
            acting_token=session.acting.token if session.acting else None,
            org_id=form.get("org_id", ""),
            mode=form.get("mode", "full"),
        )
    except ServiceError as exc:
        if exc.status == 401 and session.acting is not None:
            await failed(request, session, exc)
        return render(
            request,
            "denied.html",
            session,
            status=exc.status,
            error=exc.reason or exc.detail,
            org_name=form.get("org_name", "this company"),
        )
    return redirect("/catalog")


@router.post("/acting/stop")
async def stop_acting(request: Request) -> Response:
    """ "Stop acting as customer" / "Sign in as yourself": the acting token ends everywhere."""
    session = signed_in(request)
    await checked_form(request, session)
    if session.acting is not None:
        try:
            await service.stop_acting(services_of(request), acting_token=session.acting.token)
        except ServiceError as exc:
            if exc.status != 401:
                return render(request, "error.html", session, status=exc.status, error=exc.message)
        name = session.acting.subject_name
        session.acting = None
        session.flash.append(f"You stopped acting as {name}; you are signed in as yourself.")
    return redirect("/companies")
