"""A customer admin's budgets (per employee or cost center, and which one assisted orders
count against) and the orders awaiting their approval."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.console import service_org
from services.console.pages import (
    checked_form,
    ensure_acting,
    failed,
    redirect,
    render,
    services_of,
    signed_in,
)
from services.console.routes_people import org_of
from services.console.schemas import BrowserSession, ServiceError

router = APIRouter()

AWAITING = "awaiting_approval"


async def _budgets_page(
    request: Request,
    session: BrowserSession,
    *,
    status: int = 200,
    error: str | None = None,
    edit: str = "",
    entered: dict[str, str] | None = None,
) -> HTMLResponse:
    await ensure_acting(request, session)
    services, token = services_of(request), session.api_token or ""
    try:
        found = await service_org.budgets(services, token=token)
    except ServiceError as exc:
        refused = await failed(request, session, exc)
        return render(request, "error.html", session, status=exc.status, error=refused)
    try:
        people = await service_org.employees(services, token=token, org_id=org_of(session))
    except ServiceError:
        people = []  # names are a convenience: the budget list stands without them
    editing = next((b for b in found if b["id"] == edit), None)
    return render(
        request,
        "budgets.html",
        session,
        status=status,
        error=error,
        budgets=found,
        employees=people,
        names={p["id"]: p["name"] for p in people},
        editing=editing,
        entered=entered or {},
    )


@router.get("/budgets")
async def budgets(request: Request, edit: str = "") -> HTMLResponse:
    return await _budgets_page(request, signed_in(request), edit=edit)


def _body(form: dict[str, str], members: list[str]) -> dict[str, Any]:
    """The budget as the form describes it; orders checks every field (422 says which)."""
    kind = form.get("kind", "employee")
    body: dict[str, Any] = {
        "kind": kind,
        "amount": form.get("amount", "").strip(),
        "currency": form.get("currency", "").strip().upper(),
        "period": form.get("period", "month"),
        "on_exceed": form.get("on_exceed", "refuse"),
        "for_assisted_orders": form.get("for_assisted_orders") == "yes",
    }
    if kind == "employee":
        body["user_id"] = form.get("user_id") or None
        if form.get("name", "").strip():
            body["name"] = form["name"].strip()
    else:
        body["name"] = form.get("name", "").strip() or None
        body["member_ids"] = members
    return body


@router.post("/budgets")
async def create_budget(request: Request) -> Response:
    return await _save(request, None)


@router.post("/budgets/{budget_id}")
async def replace_budget(request: Request, budget_id: str) -> Response:
    return await _save(request, budget_id)


async def _save(request: Request, budget_id: str | None) -> Response:
    session = signed_in(request)
    form = await checked_form(request, session)
    members = [str(v) for v in (await request.form()).getlist("member_ids") if v]
    try:
        saved = await service_org.save_budget(
            services_of(request),
            token=session.api_token or "",
            budget_id=budget_id,
            body=_body(form, members),
        )
    except ServiceError as exc:
        refused = await failed(request, session, exc)
        return await _budgets_page(
            request,
            session,
            status=exc.status,
            error=refused,
            edit=budget_id or "",
            entered=form,
        )
    session.flash.append(f"Budget {saved['name']} saved.")
    return redirect("/budgets")


@router.post("/budgets/{budget_id}/delete")
async def delete_budget(request: Request, budget_id: str) -> Response:
    session = signed_in(request)
    await checked_form(request, session)
    try:
        await service_org.delete_budget(
            services_of(request), token=session.api_token or "", budget_id=budget_id
        )
    except ServiceError as exc:
        refused = await failed(request, session, exc)
        return await _budgets_page(request, session, status=exc.status, error=refused)
    session.flash.append("Budget deleted.")
    return redirect("/budgets")


# ---------------------------------------------------------------- approvals


async def _approvals_page(
    request: Request, session: BrowserSession, *, status: int = 200, error: str | None = None
) -> HTMLResponse:
    await ensure_acting(request, session)
    try:
        waiting = await service_org.orders_in(
            services_of(request), token=session.api_token or "", status=AWAITING
        )
    except ServiceError as exc:
        refused = await failed(request, session, exc)
        return render(request, "error.html", session, status=exc.status, error=refused)
    return render(request, "approvals.html", session, status=status, error=error, orders=waiting)


@router.get("/approvals")
async def approvals(request: Request) -> HTMLResponse:
    return await _approvals_page(request, signed_in(request))


@router.post("/approvals/{order_id}")
async def decide(request: Request, order_id: str) -> Response:
    session = signed_in(request)
    form = await checked_form(request, session)
    approve = form.get("decision") == "approve"
    try:
        decided = await service_org.decide_order(
            services_of(request), token=session.api_token or "", order_id=order_id, approve=approve
        )
    except ServiceError as exc:
        refused = await failed(request, session, exc)
        return await _approvals_page(request, session, status=exc.status, error=refused)
    word = "approved" if approve else "rejected"
    session.flash.append(
        f"Order {decided['id'][:8]} of {decided['placed_by']['name']} "
        f"({decided['total']} {decided['currency']}) {word}: it is now {decided['status']}."
    )
    return redirect("/approvals")
