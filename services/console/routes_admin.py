"""Remote assistance (customer admins), the audit log (reviewers), administration and mail
templates (platform admins)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.console import service, service_mail, service_org
from services.console.pages import (
    checked_form,
    ensure_acting,
    failed,
    redirect,
    render,
    services_of,
    signed_in,
)
from services.console.schemas import BrowserSession, ServiceError

router = APIRouter()

AUDIT_FILTERS = ("actor_id", "subject_org_id", "type", "session_id", "since", "until")


NOTICE_CHOICES = {
    "every_session": "a mail for every acting session",
    "daily_digest": "one mail a day listing them",
    "none": "no mail (the sessions stay listed here and audited)",
}


def _org_id(session: BrowserSession) -> str:
    return str(session.me["org_id"]) if session.me else ""


async def _assistance_page(
    request: Request, session: BrowserSession, *, status: int = 200, error: str | None = None
) -> HTMLResponse:
    await ensure_acting(request, session)
    services = services_of(request)
    token = session.api_token or ""
    try:
        org = await service.organisation(services, token=token, org_id=_org_id(session))
        sessions = await service.acting_sessions(services, token=token, org_id=_org_id(session))
        notices = await service_org.acting_notices(services, token=token, org_id=_org_id(session))
    except ServiceError as exc:
        refused = await failed(request, session, exc)
        return render(request, "error.html", session, status=exc.status, error=refused)
    return render(
        request,
        "assistance.html",
        session,
        choices=NOTICE_CHOICES,
        status=status,
        error=error,
        org=org,
        sessions=sessions,
        notices=notices,
    )


@router.get("/assistance")
async def assistance(request: Request) -> HTMLResponse:
    return await _assistance_page(request, signed_in(request))


@router.post("/assistance/consent")
async def consent(request: Request) -> Response:
    session = signed_in(request)
    form = await checked_form(request, session)
    allow = form.get("allow") == "yes"
    try:
        await service.set_consent(
            services_of(request),
            token=session.api_token or "",
            org_id=_org_id(session),
            allow=allow,
        )
    except ServiceError as exc:
        refused = await failed(request, session, exc)
        return await _assistance_page(request, session, status=exc.status, error=refused)
    session.flash.append(
        "Remote assistance is allowed."
        if allow
        else "Remote assistance is refused; acting sessions held on your organisation ended."
    )
    return redirect("/assistance")


@router.post("/assistance/notices")
async def notices(request: Request) -> Response:
    """How the organisation's admins hear that staff acted for it (identity decides who may
    choose: never an acting session, so staff cannot silence the notices about themselves)."""
    session = signed_in(request)
    form = await checked_form(request, session)
    try:
        chosen = await service_org.set_acting_notices(
            services_of(request),
            token=session.api_token or "",
            org_id=_org_id(session),
            choice=form.get("acting_notices", ""),
        )
    except ServiceError as exc:
        refused = await failed(request, session, exc)
        return await _assistance_page(request, session, status=exc.status, error=refused)
    session.flash.append(f"Your admins now get {NOTICE_CHOICES.get(chosen, chosen)}.")
    return redirect("/assistance")


@router.get("/audit")
async def audit(request: Request, cursor: str = "", verify: str = "") -> HTMLResponse:
    session = signed_in(request)
    await ensure_acting(request, session)
    filters = {
        name: value.strip()
        for name in AUDIT_FILTERS
        if (value := str(request.query_params.get(name, "")))
    }
    services = services_of(request)
    token = session.api_token or ""
    context: dict[str, Any] = {"filters": filters, "verified": None}
    try:
        page = await service.audit_events(services, token=token, filters=filters, cursor=cursor)
        if verify:
            context["verified"] = await service.verify_chain(services, token=token)
    except ServiceError as exc:
        refused = await failed(request, session, exc)
        return render(
            request,
            "audit.html",
            session,
            status=exc.status,
            error=refused,
            events=[],
            next_cursor=None,
            **context,
        )
    return render(
        request,
        "audit.html",
        session,
        events=page["items"],
        next_cursor=page.get("next_cursor"),
        **context,
    )


# ---------------------------------------------------------------- platform administration


async def _admin_page(
    request: Request,
    session: BrowserSession,
    *,
    status: int = 200,
    error: str | None = None,
    done: str | None = None,
) -> HTMLResponse:
    await ensure_acting(request, session)
    try:
        orgs = await service.customers(
            services_of(request), token=session.api_token or "", q=None, cursor=None
        )
    except ServiceError as exc:
        refused = await failed(request, session, exc)
        return render(request, "error.html", session, status=exc.status, error=refused)
    return render(
        request, "admin.html", session, status=status, error=error, done=done, orgs=orgs["items"]
    )


@router.get("/admin")
async def admin(request: Request) -> HTMLResponse:
    return await _admin_page(request, signed_in(request))


def _words(text: str) -> list[str]:
    return [word for word in text.replace(",", " ").split() if word]


@router.post("/admin/{what}")
async def admin_change(request: Request, what: str) -> Response:
    session = signed_in(request)
    form = await checked_form(request, session)
    services, token = services_of(request), session.api_token or ""
    try:
        if what == "org":
            org = {k: form[k] for k in ("name", "contract_number", "country") if form.get(k)}
            made = await service.create_org(services, token=token, body=org)
            done = f"Organisation {made['name']} created ({made['id']})."
        elif what == "org-update":
            body: dict[str, Any] = {k: form[k] for k in ("status",) if form.get(k)}
            if form.get("allow_assistance") in ("yes", "no"):
                body["allow_assistance"] = form["allow_assistance"] == "yes"
            await service.update_org(services, token=token, org_id=form["org_id"], body=body)
            done = "Organisation updated."
        elif what == "user":
            new_user: dict[str, Any] = {
                "email": form.get("email", ""),
                "name": form.get("name", ""),
                "password": form.get("password", ""),
                "kind": form.get("kind", "customer"),
                "roles": _words(form.get("roles", "")),
                "permissions": _words(form.get("permissions", "")),
                **({"org_id": form["org_id"]} if form.get("org_id") else {}),
            }
            made = await service.create_user(services, token=token, body=new_user)
            done = f"User {made['email']} created ({made['id']})."
        elif what == "user-update":
            update: dict[str, Any] = {
                "roles": _words(form.get("roles", "")),
                "permissions": _words(form.get("permissions", "")),
            }
            if form.get("active") in ("yes", "no"):
                update["active"] = form["active"] == "yes"
            await service.update_user(services, token=token, user_id=form["user_id"], body=update)
            done = "User updated."
        elif what == "caretaker":
            await service.set_caretaker(
                services,
                token=token,
                org_id=form.get("org_id", ""),
                user_id=form.get("user_id", ""),
                assign=form.get("assign") != "no",
            )
            done = "Caretaker link changed."
        else:
            return render(request, "error.html", session, status=404, error="No such page.")
    except ServiceError as exc:
        refused = await failed(request, session, exc)
        return await _admin_page(request, session, status=exc.status, error=refused)
    except KeyError as exc:
        return await _admin_page(request, session, status=422, error=f"{exc.args[0]} is missing")
    session.flash.append(done)
    return redirect("/admin")


# ---------------------------------------------------------------- mail templates


async def _templates_page(
    request: Request, session: BrowserSession, *, status: int = 200, error: str | None = None
) -> HTMLResponse:
    await ensure_acting(request, session)
    try:
        templates = await service_mail.mail_templates(
            services_of(request), token=session.api_token or ""
        )
    except ServiceError as exc:
        refused = await failed(request, session, exc)
        return render(request, "error.html", session, status=exc.status, error=refused)
    return render(
        request, "mail_templates.html", session, status=status, error=error, templates=templates
    )


@router.get("/mail-templates")
async def mail_templates(request: Request) -> HTMLResponse:
    """The texts identity mails (invitations, notices, approval requests); platform admins."""
    return await _templates_page(request, signed_in(request))


@router.post("/mail-templates/{key}")
async def change_mail_template(request: Request, key: str) -> Response:
    session = signed_in(request)
    form = await checked_form(request, session)
    reset = form.get("action") == "reset"
    # A browser sends a textarea's lines with CRLF; the built-in texts (and mail) use LF.
    body = form.get("body", "").replace("\r\n", "\n")
    change = {} if reset else {"subject": form.get("subject", ""), "body": body}
    try:
        await service_mail.set_mail_template(
            services_of(request), token=session.api_token or "", key=key, change=change
        )
    except ServiceError as exc:
        refused = await failed(request, session, exc)
        return await _templates_page(request, session, status=exc.status, error=refused)
    session.flash.append(
        f"The {key} mail has its built-in text again." if reset else f"The {key} mail is saved."
    )
    return redirect(f"/mail-templates#template-{key}")
