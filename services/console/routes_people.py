"""A customer organisation's people: its employees (role, Active flag) and its invitations,
and the public page where an invited contact chooses a password (the link in the mail)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.console import service_org
from services.console.pages import (
    begin_session,
    checked_form,
    current,
    failed,
    loaded_page,
    redirect,
    render,
    services_of,
    set_cookie,
    signed_in,
    store,
)
from services.console.schemas import BrowserSession, ServiceError

router = APIRouter()

ROLES = ("admin", "buyer", "viewer")
STATUSES = ("pending", "accepted", "expired", "revoked")


def org_of(session: BrowserSession) -> str:
    """The organisation the page is about: the acting subject's while acting (identity then
    refuses with the policy's reason: never managed while acting), else one's own."""
    if session.acting is not None:
        return session.acting.subject_org_id
    return str(session.me["org_id"]) if session.me else ""


async def _page(
    request: Request,
    session: BrowserSession,
    template: str,
    load: Callable[[], Awaitable[dict[str, Any]]],
    *,
    status: int = 200,
    error: str | None = None,
) -> HTMLResponse:
    return await loaded_page(
        request, session, template, load, status=status, error=error, roles=ROLES
    )


async def _change(
    request: Request,
    change: Callable[[BrowserSession, dict[str, str]], Awaitable[str]],
    *,
    back: str,
    page: Callable[[BrowserSession, int, str], Awaitable[HTMLResponse]],
) -> Response:
    """One change; done, the flash says what happened; refused, the page shows why."""
    session = signed_in(request)
    form = await checked_form(request, session)
    try:
        done = await change(session, form)
    except ServiceError as exc:
        refused = await failed(request, session, exc)
        return await page(session, exc.status, refused)
    session.flash.append(done)
    return redirect(back)


# ---------------------------------------------------------------- employees


async def _employees_page(
    request: Request, session: BrowserSession, status: int = 200, error: str | None = None
) -> HTMLResponse:
    async def load() -> dict[str, Any]:
        token, org_id = session.api_token or "", org_of(session)
        people = await service_org.employees(services_of(request), token=token, org_id=org_id)
        return {"employees": people}

    return await _page(request, session, "employees.html", load, status=status, error=error)


@router.get("/employees")
async def employees(request: Request) -> HTMLResponse:
    return await _employees_page(request, signed_in(request))


@router.post("/employees/{user_id}")
async def change_employee(request: Request, user_id: str) -> Response:
    async def change(session: BrowserSession, form: dict[str, str]) -> str:
        body: dict[str, Any] = {}
        if form.get("role"):
            body["roles"] = [form["role"]]
        if form.get("active") in ("yes", "no"):
            body["active"] = form["active"] == "yes"
        changed = await service_org.update_employee(
            services_of(request),
            token=session.api_token or "",
            org_id=org_of(session),
            user_id=user_id,
            change=body,
        )
        state = "active" if changed["active"] else "deactivated"
        return f"{changed['name']} is now {changed['role']}, {state}."

    async def page(session: BrowserSession, status: int, error: str) -> HTMLResponse:
        return await _employees_page(request, session, status, error)

    return await _change(request, change, back="/employees", page=page)


# ---------------------------------------------------------------- invitations


async def _invitations_page(
    request: Request,
    session: BrowserSession,
    status: int = 200,
    error: str | None = None,
    shown: str = "",
    bulk: list[dict[str, Any]] | None = None,
) -> HTMLResponse:
    async def load() -> dict[str, Any]:
        found = await service_org.invitations(
            services_of(request),
            token=session.api_token or "",
            org_id=org_of(session),
            status=shown or None,
        )
        return {"invitations": found, "shown": shown, "statuses": STATUSES, "bulk": bulk}

    return await _page(request, session, "invitations.html", load, status=status, error=error)


@router.get("/invitations")
async def invitations(request: Request, status: str = "") -> HTMLResponse:
    shown = status if status in STATUSES else ""
    return await _invitations_page(request, signed_in(request), shown=shown)


@router.post("/invitations")
async def invite(request: Request) -> Response:
    async def change(session: BrowserSession, form: dict[str, str]) -> str:
        made = await service_org.invite(
            services_of(request),
            token=session.api_token or "",
            org_id=org_of(session),
            email=form.get("email", "").strip(),
            name=form.get("name", "").strip(),
            roles=[form.get("role", "buyer")],
        )
        return f"Invitation sent to {made['email']}."

    async def page(session: BrowserSession, status: int, error: str) -> HTMLResponse:
        return await _invitations_page(request, session, status, error)

    return await _change(request, change, back="/invitations", page=page)


# Identity's own rule for an address, so that a line it would refuse as malformed does not
# make it refuse the whole request (a batch is validated as one body).
ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+$")
MAX_LINES = 200  # identity's limit for one request


def _lines(text: str, role: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """ "email, name" per line: the items to send, and each line's place in the answer (a
    line that is not an address and a name is answered here, the others by identity)."""
    items: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        email, _, name = (part.strip() for part in line.partition(","))
        if not ADDRESS.match(email) or not name or len(name) > 200:
            results.append(
                {
                    "line": number,
                    "email": email,
                    "status": "refused",
                    "detail": 'write it as "email, name"',
                }
            )
            continue
        results.append({"line": number, "email": email, "item": len(items)})
        items.append({"email": email, "name": name, "roles": [role]})
    return items, results


@router.post("/bulk-invitations")
async def invite_many(request: Request) -> Response:
    """Several colleagues at once; the page shows each line's answer (identity's 201-like
    `invited`, or `refused` with its status and detail)."""
    session = signed_in(request)
    form = await checked_form(request, session)
    items, results = _lines(form.get("lines", ""), form.get("role", "buyer"))
    if not results:
        return await _invitations_page(request, session, 422, "Write one colleague per line.")
    if len(items) > MAX_LINES:
        error = f"At most {MAX_LINES} colleagues at once."
        return await _invitations_page(request, session, 422, error)
    answers: list[dict[str, Any]] = []
    if items:
        try:
            answers = await service_org.invite_many(
                services_of(request),
                token=session.api_token or "",
                org_id=org_of(session),
                items=items,
            )
        except ServiceError as exc:
            refused = await failed(request, session, exc)
            return await _invitations_page(request, session, exc.status, refused)
    for result in results:
        if "item" in result:
            answer = answers[result.pop("item")]
            result["status"] = answer["status"]
            result["detail"] = answer.get("detail", "")
            result["email"] = answer["email"]
    return await _invitations_page(request, session, bulk=results)


@router.post("/invitations/{invitation_id}/{what}")
async def change_invitation(request: Request, invitation_id: str, what: str) -> Response:
    async def change(session: BrowserSession, _form: dict[str, str]) -> str:
        services, token, org_id = services_of(request), session.api_token or "", org_of(session)
        if what == "resend":
            sent = await service_org.resend_invitation(
                services, token=token, org_id=org_id, invitation_id=invitation_id
            )
            return f"Invitation to {sent['email']} sent again (a new link, a new validity)."
        if what == "revoke":
            gone = await service_org.revoke_invitation(
                services, token=token, org_id=org_id, invitation_id=invitation_id
            )
            return f"Invitation to {gone['email']} revoked."
        raise ServiceError(404, "No such page.")

    async def page(session: BrowserSession, status: int, error: str) -> HTMLResponse:
        return await _invitations_page(request, session, status, error)

    return await _change(request, change, back="/invitations", page=page)


# ---------------------------------------------------------------- accepting (public)


@router.get("/invitations/{token}")
async def accept_page(request: Request, token: str) -> Response:
    """The mail's link: no sign-in needed, the token in the address is the credential."""
    session = current(request) or store(request).new()
    response = render(request, "accept_invitation.html", session, token=token)
    set_cookie(request, response, session)
    return response


@router.post("/invitations/{token}")
async def accept(request: Request, token: str) -> Response:
    session = current(request)
    if session is None:
        return redirect(f"/invitations/{token}")
    form = await checked_form(request, session)
    password = form.get("password", "")
    if password != form.get("password_again", ""):
        return render(
            request,
            "accept_invitation.html",
            session,
            status=422,
            error="The two passwords differ.",
            token=token,
        )
    try:
        answer = await service_org.accept_invitation(
            services_of(request), invitation_token=token, password=password
        )
    except ServiceError as exc:
        return render(
            request,
            "accept_invitation.html",
            session,
            status=exc.status,
            error=exc.message,
            token=token,
            closed=exc.status in (404, 410),
        )
    session.flash.append("Welcome: your account is ready and you are signed in.")
    return await begin_session(request, session, answer)
