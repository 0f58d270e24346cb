"""The customer's world: catalog, cart (lock, take-over), placing, reading and cancelling orders."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.console import service, service_org
from services.console.pages import (
    checked_form,
    failed,
    loaded_page,
    redirect,
    services_of,
    signed_in,
)
from services.console.schemas import BrowserSession, ServiceError

router = APIRouter()


def _token(session: BrowserSession) -> str:
    return session.api_token or ""


def _view_only(session: BrowserSession) -> str | None:
    """Why changing controls are shown disabled. Only a hint for the page: the services
    refuse such changes themselves (a forged post gets their 403)."""
    if session.acting is not None and session.acting.mode == "view":
        return "View-only acting session: you can look, not change anything."
    return None


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
        request, session, template, load, status=status, error=error, view_only=_view_only(session)
    )


@router.get("/catalog")
async def catalog(request: Request, q: str = "", cursor: str = "") -> HTMLResponse:
    session = signed_in(request)

    async def load() -> dict[str, Any]:
        page = await service.products(
            services_of(request), token=_token(session), q=q or None, cursor=cursor
        )
        return {"products": page["items"], "next_cursor": page.get("next_cursor"), "q": q}

    return await _page(request, session, "catalog.html", load)


async def _cart_context(request: Request, session: BrowserSession) -> dict[str, Any]:
    services = services_of(request)
    cart = await service.cart(services, token=_token(session))
    try:
        lists = await service.saved_lists(services, token=_token(session))
    except ServiceError as exc:
        if exc.status == 401:
            raise
        lists = []
    # What is left of the budget one's own orders count against: identity's roles say who
    # has one (a hint, like the navigation); orders decides, and a refusal shows no budget.
    budget: dict[str, Any] | None = None
    has_budget = False
    if session.acting is None:
        try:
            budget, has_budget = await service_org.own_budget(services, token=_token(session)), True
        except ServiceError as exc:
            if exc.status == 401:
                raise
    total = sum(float(item["unit_price"]) * item["quantity"] for item in cart["items"])
    lock = cart.get("lock")
    mine = bool(
        lock and session.acting is not None and lock["session_id"] == session.acting.session_id
    )
    return {
        "cart": cart,
        "lists": lists,
        "budget": budget,
        "has_budget": has_budget,
        "total": f"{total:.2f}",
        "currency": cart["items"][0]["currency"] if cart["items"] else "",
        "lock": lock,
        "lock_is_mine": mine,
        # One key per drawing of the cart page: a double click on "Place order" sends the
        # same key twice, and orders places one order.
        "order_key": secrets.token_urlsafe(16),
    }


async def _cart_page(
    request: Request, session: BrowserSession, *, status: int = 200, error: str | None = None
) -> HTMLResponse:
    return await _page(
        request,
        session,
        "cart.html",
        lambda: _cart_context(request, session),
        status=status,
        error=error,
    )


@router.get("/cart")
async def cart(request: Request) -> HTMLResponse:
    return await _cart_page(request, signed_in(request))


async def _change(
    request: Request,
    change: Callable[[BrowserSession, dict[str, str]], Awaitable[object]],
    *,
    done: str,
) -> Response:
    """Run one change; its refusal is shown on the cart page with the service's status."""
    session = signed_in(request)
    form = await checked_form(request, session)
    try:
        await change(session, form)
    except ServiceError as exc:
        refused = await failed(request, session, exc)
        return await _cart_page(request, session, status=exc.status, error=refused)
    except ValueError:
        return await _cart_page(request, session, status=422, error="Enter a whole number.")
    return redirect(done)


@router.post("/cart/items")
async def add_item(request: Request) -> Response:
    async def change(session: BrowserSession, form: dict[str, str]) -> None:
        await service.add_to_cart(
            services_of(request),
            token=_token(session),
            sku=form.get("sku", ""),
            quantity=int(form.get("quantity", "1")),
        )

    return await _change(request, change, done="/cart")


@router.post("/cart/items/{sku}")
async def change_item(request: Request, sku: str) -> Response:
    async def change(session: BrowserSession, form: dict[str, str]) -> None:
        quantity = 0 if "remove" in form else int(form.get("quantity", "0"))
        await service.change_quantity(
            services_of(request), token=_token(session), sku=sku, quantity=quantity
        )

    return await _change(request, change, done="/cart")


@router.post("/cart/lock")
async def lock(request: Request) -> Response:
    async def change(session: BrowserSession, _form: dict[str, str]) -> None:
        await service.lock_cart(services_of(request), token=_token(session))

    return await _change(request, change, done="/cart")


@router.post("/cart/unlock")
async def unlock(request: Request) -> Response:
    async def change(session: BrowserSession, _form: dict[str, str]) -> None:
        await service.unlock_cart(services_of(request), token=_token(session))

    return await _change(request, change, done="/cart")


@router.post("/cart/takeover")
async def take_over(request: Request) -> Response:
    async def change(session: BrowserSession, form: dict[str, str]) -> None:
        await service.take_over_cart(
            services_of(request),
            token=_token(session),
            holder_session_id=form.get("holder_session_id", ""),
        )
        session.flash.append(
            f"The cart lock is yours: taken over from {form.get('holder_name') or 'its holder'}."
        )

    return await _change(request, change, done="/cart")


@router.post("/orders")
async def place_order(request: Request) -> Response:
    placed: dict[str, Any] = {}

    async def change(session: BrowserSession, form: dict[str, str]) -> None:
        placed.update(
            await service.place_order(
                services_of(request),
                token=_token(session),
                idempotency_key=form.get("idempotency_key") or secrets.token_urlsafe(16),
            )
        )

    response = await _change(request, change, done="/orders")
    if placed:
        return redirect(f"/orders/{placed['id']}")
    return response


@router.get("/orders")
async def orders(request: Request, cursor: str = "") -> HTMLResponse:
    session = signed_in(request)

    async def load() -> dict[str, Any]:
        page = await service.orders(services_of(request), token=_token(session), cursor=cursor)
        return {"orders": page["items"], "next_cursor": page.get("next_cursor")}

    return await _page(request, session, "orders.html", load)


@router.get("/orders/{order_id}")
async def order(request: Request, order_id: str) -> HTMLResponse:
    session = signed_in(request)

    async def load() -> dict[str, Any]:
        found = await service.order(services_of(request), token=_token(session), order_id=order_id)
        return {"order": found}

    return await _page(request, session, "order.html", load)


@router.post("/orders/{order_id}/cancel")
async def cancel(request: Request, order_id: str) -> Response:
    session = signed_in(request)
    await checked_form(request, session)
    try:
        await service.cancel_order(services_of(request), token=_token(session), order_id=order_id)
    except ServiceError as exc:
        refused = await failed(request, session, exc)

        async def load() -> dict[str, Any]:
            found = await service.order(
                services_of(request), token=_token(session), order_id=order_id
            )
            return {"order": found}

        return await _page(
            request,
            session,
            "order.html",
            load,
            status=exc.status,
            error=refused,
        )
    session.flash.append("The order is cancelled.")
    return redirect(f"/orders/{order_id}")
