"""What the pages do: calls to the five services' public APIs with the person's own token.

No decision is made here: every refusal comes from a service (and its policy) and is passed
on as a ServiceError carrying the service's `detail` and `reason`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from services.console.schemas import Acting, ServiceError


@dataclass
class Services:
    """The HTTP client and where each service listens."""

    client: httpx.AsyncClient
    urls: dict[str, str]


async def call(
    services: Services,
    method: str,
    service: str,
    path: str,
    *,
    token: str | None,
    json: Any = None,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """One request to `service` with the person's token; a 4xx/5xx becomes a ServiceError
    (also for the page modules' own call lists, e.g. service_org.py)."""
    sent = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = await services.client.request(
            method,
            services.urls[service] + path,
            json=json,
            params={k: v for k, v in (params or {}).items() if v not in (None, "")},
            headers={**sent, **(headers or {})},
        )
    except httpx.HTTPError as exc:
        message = f"the {service} service cannot be reached ({type(exc).__name__})"
        raise ServiceError(503, message) from exc
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = {}
        detail = body.get("detail") if isinstance(body, dict) else None
        raise ServiceError(
            response.status_code,
            detail
            if isinstance(detail, str)
            else f"the {service} service answered {response.status_code}",
            reason=body.get("reason") if isinstance(body, dict) else None,
            body=body if isinstance(body, dict) else {},
        )
    return response.json() if response.content else None


# ---------------------------------------------------------------- identity


async def sign_in(services: Services, *, email: str, password: str) -> dict[str, Any]:
    """The login answer: the token, and for staff with a default company its acting session
    (or why there is none) in `after_login`."""
    body = await call(
        services,
        "POST",
        "identity",
        "/v1/auth/token",
        token=None,
        json={"email": email, "password": password},
    )
    return dict(body)


async def sign_out(services: Services, *, token: str) -> None:
    """Ends the login session and every acting session started from it, in every service."""
    await call(services, "POST", "identity", "/v1/auth/logout", token=token)


async def me(services: Services, *, token: str) -> dict[str, Any]:
    return dict(await call(services, "GET", "identity", "/v1/me", token=token))


async def customers(
    services: Services, *, token: str, q: str | None, cursor: str | None
) -> dict[str, Any]:
    params = {"q": q, "cursor": cursor, "limit": 20}
    return dict(
        await call(services, "GET", "identity", "/v1/customers", token=token, params=params)
    )


def acting_of(body: dict[str, Any]) -> Acting:
    return Acting(
        token=str(body["access_token"]),
        session_id=str(body["session_id"]),
        mode=str(body["mode"]),
        expires_at=datetime.fromisoformat(body["expires_at"]),
        actor_name=str(body["actor"]["name"]),
        subject_org_id=str(body["subject"]["org_id"]),
        subject_name=str(body["subject"]["name"]),
    )


async def start_acting(
    services: Services, *, token: str, acting_token: str | None, org_id: str, mode: str
) -> Acting:
    """A new acting session; while one runs, identity switches (ends it, starts the next)."""
    path = "/v1/acting-as/switch" if acting_token else "/v1/acting-as"
    body = await call(
        services,
        "POST",
        "identity",
        path,
        token=acting_token or token,
        json={"customer_org_id": org_id, "mode": mode},
    )
    return acting_of(body)


async def acting_context(services: Services, *, acting_token: str) -> dict[str, Any]:
    return dict(
        await call(services, "GET", "identity", "/v1/acting-as/current", token=acting_token)
    )


async def stop_acting(services: Services, *, acting_token: str) -> None:
    await call(services, "DELETE", "identity", "/v1/acting-as/current", token=acting_token)


async def why_acting_ended(services: Services, *, token: str, session_id: str) -> str | None:
    """Identity's record of how one's own acting session ended ("consent_withdrawn: ...")."""
    try:
        body = await call(
            services, "GET", "identity", f"/v1/me/acting-sessions/{session_id}", token=token
        )
    except ServiceError:
        return None
    reason = body.get("end_reason")
    if not reason:
        return None
    detail = body.get("end_detail")
    text = str(reason).replace("_", " ")
    return f"{text}: {detail}" if detail else text


async def acting_sessions(services: Services, *, token: str, org_id: str) -> list[dict[str, Any]]:
    body = await call(
        services, "GET", "identity", f"/v1/orgs/{org_id}/acting-sessions", token=token
    )
    return list(body["items"])


async def organisation(services: Services, *, token: str, org_id: str) -> dict[str, Any]:
    return dict(await call(services, "GET", "identity", f"/v1/orgs/{org_id}", token=token))


async def set_consent(services: Services, *, token: str, org_id: str, allow: bool) -> None:
    await call(
        services,
        "PUT",
        "identity",
        f"/v1/orgs/{org_id}/consent",
        token=token,
        json={"allow_assistance": allow},
    )


async def create_org(services: Services, *, token: str, body: dict[str, Any]) -> dict[str, Any]:
    return dict(await call(services, "POST", "identity", "/v1/orgs", token=token, json=body))


async def update_org(
    services: Services, *, token: str, org_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    return dict(
        await call(services, "PATCH", "identity", f"/v1/orgs/{org_id}", token=token, json=body)
    )


async def create_user(services: Services, *, token: str, body: dict[str, Any]) -> dict[str, Any]:
    return dict(await call(services, "POST", "identity", "/v1/users", token=token, json=body))


async def update_user(
    services: Services, *, token: str, user_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    path = f"/v1/users/{user_id}"
    return dict(await call(services, "PATCH", "identity", path, token=token, json=body))


async def set_caretaker(
    services: Services, *, token: str, org_id: str, user_id: str, assign: bool
) -> None:
    method = "PUT" if assign else "DELETE"
    await call(services, method, "identity", f"/v1/orgs/{org_id}/caretakers/{user_id}", token=token)


# ---------------------------------------------------------------- catalog, cart, orders


async def products(
    services: Services, *, token: str, q: str | None, cursor: str | None = None
) -> dict[str, Any]:
    """A page of products (`items`, `next_cursor`)."""
    params = {"q": q, "cursor": cursor or None}
    return dict(await call(services, "GET", "catalog", "/v1/products", token=token, params=params))


async def cart(services: Services, *, token: str) -> dict[str, Any]:
    return dict(await call(services, "GET", "cart", "/v1/cart", token=token))


async def add_to_cart(services: Services, *, token: str, sku: str, quantity: int) -> None:
    body = {"sku": sku, "quantity": quantity}
    await call(services, "POST", "cart", "/v1/cart/items", token=token, json=body)


async def change_quantity(services: Services, *, token: str, sku: str, quantity: int) -> None:
    if quantity <= 0:
        await call(services, "DELETE", "cart", f"/v1/cart/items/{sku}", token=token)
        return
    body = {"quantity": quantity}
    await call(services, "PATCH", "cart", f"/v1/cart/items/{sku}", token=token, json=body)


async def lock_cart(services: Services, *, token: str) -> None:
    await call(services, "POST", "cart", "/v1/cart/lock", token=token)


async def unlock_cart(services: Services, *, token: str) -> None:
    await call(services, "DELETE", "cart", "/v1/cart/lock", token=token)


async def take_over_cart(services: Services, *, token: str, holder_session_id: str) -> None:
    """Names the holder the person saw: if the lock changed hands since, the 409 says to whom."""
    body = {"holder_session_id": holder_session_id}
    await call(services, "POST", "cart", "/v1/cart/lock/takeover", token=token, json=body)


async def saved_lists(services: Services, *, token: str) -> list[dict[str, Any]]:
    body = await call(services, "GET", "cart", "/v1/saved-lists", token=token)
    return list(body["items"])


async def place_order(services: Services, *, token: str, idempotency_key: str) -> dict[str, Any]:
    """The key is made when the cart page is drawn: a double click places one order."""
    headers = {"Idempotency-Key": idempotency_key}
    return dict(await call(services, "POST", "orders", "/v1/orders", token=token, headers=headers))


async def orders(services: Services, *, token: str, cursor: str | None = None) -> dict[str, Any]:
    """A page of the order history, newest first (`items`, `next_cursor`)."""
    params = {"cursor": cursor or None}
    return dict(await call(services, "GET", "orders", "/v1/orders", token=token, params=params))


# Pages a console page reads at most when it shows a whole list (200 items a page): a bound,
# not an expected size.
_MAX_PAGES = 50


async def every_page(
    services: Services,
    service: str,
    path: str,
    *,
    token: str,
    params: dict[str, Any] | None = None,
    page_size: int = 200,
) -> list[dict[str, Any]]:
    """The items of every page of a list (following `next_cursor`, up to a bound)."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(_MAX_PAGES):
        query = {**(params or {}), "cursor": cursor, "limit": page_size}
        page = await call(services, "GET", service, path, token=token, params=query)
        found += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return found


async def order(services: Services, *, token: str, order_id: str) -> dict[str, Any]:
    return dict(await call(services, "GET", "orders", f"/v1/orders/{order_id}", token=token))


async def cancel_order(services: Services, *, token: str, order_id: str) -> None:
    path = f"/v1/orders/{order_id}/cancel"
    await call(services, "POST", "orders", path, token=token, json={})


# ---------------------------------------------------------------- audit


async def audit_events(
    services: Services, *, token: str, filters: dict[str, str], cursor: str | None
) -> dict[str, Any]:
    params: dict[str, Any] = {**filters, "cursor": cursor, "limit": 25}
    return dict(
        await call(services, "GET", "audit", "/v1/audit/events", token=token, params=params)
    )


async def verify_chain(services: Services, *, token: str) -> dict[str, Any]:
    return dict(await call(services, "GET", "audit", "/v1/audit/verify", token=token))
