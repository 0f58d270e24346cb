"""What every page shares: the session behind the cookie, CSRF checks, rendering, errors."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from services.console import service
from services.console.schemas import BrowserSession, ServiceError
from services.console.service import Services
from services.console.sessions import COOKIE, SessionStore
from services.console.settings import ConsoleSettings

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


class NotSignedIn(Exception):
    """No (live) session behind the cookie: the person is sent to the sign-in page."""


class CsrfRefused(Exception):
    """A changing request without the session's CSRF token."""


class ActingEnded(Exception):
    """A service refused the acting token: the session ended (stopped, revoked, expired)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def store(request: Request) -> SessionStore:
    sessions: SessionStore = request.app.state.sessions
    return sessions


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def settings_of(request: Request) -> ConsoleSettings:
    settings: ConsoleSettings = request.app.state.settings
    return settings


def current(request: Request) -> BrowserSession | None:
    return store(request).get(request.cookies.get(COOKIE))


def signed_in(request: Request) -> BrowserSession:
    session = current(request)
    if session is None or not session.signed_in:
        raise NotSignedIn
    return session


async def checked_form(request: Request, session: BrowserSession) -> dict[str, str]:
    """The posted form, once its CSRF token matched the session's (403 otherwise)."""
    form = await request.form()
    sent = form.get("csrf_token")
    if not isinstance(sent, str) or not hmac.compare_digest(sent, session.csrf_token):
        raise CsrfRefused
    return {key: value for key, value in form.items() if isinstance(value, str)}


def set_cookie(request: Request, response: Response, session: BrowserSession) -> None:
    response.set_cookie(
        COOKIE,
        session.id,
        httponly=True,
        samesite="strict",
        secure=settings_of(request).console_cookie_secure,
        path="/",
    )


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def home_of(session: BrowserSession) -> str:
    if session.is_staff and session.acting is None:
        return "/companies"
    return "/catalog"


def _time_left(expires_at: datetime) -> str:
    seconds = max(0, int((expires_at - datetime.now(UTC)).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min"


def render(
    request: Request,
    template: str,
    session: BrowserSession | None,
    *,
    status: int = 200,
    error: str | None = None,
    **context: Any,
) -> HTMLResponse:
    messages = list(session.flash) if session else []
    if session:
        session.flash.clear()
    acting = session.acting if session else None
    return templates.TemplateResponse(
        request,
        template,
        {
            "session": session,
            "me": session.me if session else None,
            "acting": acting,
            "time_left": _time_left(acting.expires_at) if acting else None,
            "csrf_token": session.csrf_token if session else "",
            "messages": messages,
            "error": error,
            **context,
        },
        status_code=status,
    )


async def begin_session(
    request: Request, session: BrowserSession, answer: dict[str, Any]
) -> Response:
    """Sign this browser in with identity's login answer (a password, a login link or an
    accepted invitation): a new session id (no fixation), and for a staff member whose
    default company identity opened, that acting session, or the policy's reason for none."""
    token = str(answer["access_token"])
    me = await service.me(services_of(request), token=token)
    fresh = store(request).renew(session)
    fresh.token, fresh.me = token, me
    after = answer.get("after_login")
    if isinstance(after, dict):
        if after.get("acting_as"):
            fresh.acting = service.acting_of(after["acting_as"])
        else:
            fresh.flash.append(
                "No acting session for your default company: "
                f"{after.get('reason') or 'the policy does not allow it now'}."
            )
    response = redirect(home_of(fresh))
    set_cookie(request, response, fresh)
    return response


async def ensure_acting(request: Request, session: BrowserSession) -> None:
    """While acting, ask identity whether the session still lives before drawing a page."""
    if session.acting is None:
        return
    try:
        context = await service.acting_context(
            services_of(request), acting_token=session.acting.token
        )
    except ServiceError as exc:
        if exc.status == 401:
            raise ActingEnded(await ended_reason(request, session, exc)) from exc
        raise
    session.acting.expires_at = datetime.fromisoformat(context["expires_at"])


async def ended_reason(request: Request, session: BrowserSession, exc: ServiceError) -> str:
    """Why the acting session ended: identity's record, else what the refusing service said."""
    acting = session.acting
    if acting is None or session.token is None:
        return exc.message
    why = await service.why_acting_ended(
        services_of(request), token=session.token, session_id=acting.session_id
    )
    return why or exc.message


async def failed(request: Request, session: BrowserSession, exc: ServiceError) -> str:
    """Sort a service's refusal: an ended acting session becomes ActingEnded (the person goes
    back to the company list), an ended login session NotSignedIn; the rest is the message
    the page shows."""
    if exc.status == 401 and session.acting is not None:
        raise ActingEnded(await ended_reason(request, session, exc))
    if exc.status == 401:
        store(request).drop(session)
        raise NotSignedIn
    return exc.message


async def loaded_page(
    request: Request,
    session: BrowserSession,
    template: str,
    load: Callable[[], Awaitable[dict[str, Any]]],
    *,
    status: int = 200,
    error: str | None = None,
    **extra: Any,
) -> HTMLResponse:
    """A page whose content the services give: `load` asks them; a refusal shows the error
    page with the service's reason (an ended session leaves the page, as `failed` says)."""
    await ensure_acting(request, session)
    try:
        context = await load()
    except ServiceError as exc:
        refused = await failed(request, session, exc)
        return render(request, "error.html", session, status=exc.status, error=refused)
    return render(request, template, session, status=status, error=error, **extra, **context)
