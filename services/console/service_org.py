"""The calls behind a customer organisation's own pages (employees, invitations, budgets,
approvals, acting notices) and everyone's "My account" page (preferences, login link).

Like service.py: the person's own token, no decision here; a refusal is a ServiceError with
the service's `detail` and the policy's `reason`.
"""

from __future__ import annotations

from typing import Any

from services.console.service import Services, call, every_page

# ---------------------------------------------------------------- employees (identity)


async def employees(services: Services, *, token: str, org_id: str) -> list[dict[str, Any]]:
    path = f"/v1/orgs/{org_id}/employees"
    return await every_page(services, "identity", path, token=token)


async def update_employee(
    services: Services, *, token: str, org_id: str, user_id: str, change: dict[str, Any]
) -> dict[str, Any]:
    path = f"/v1/orgs/{org_id}/employees/{user_id}"
    return dict(await call(services, "PATCH", "identity", path, token=token, json=change))


# ---------------------------------------------------------------- invitations (identity)


async def invitations(
    services: Services, *, token: str, org_id: str, status: str | None
) -> list[dict[str, Any]]:
    path = f"/v1/orgs/{org_id}/invitations"
    return await every_page(services, "identity", path, token=token, params={"status": status})


async def invite(
    services: Services, *, token: str, org_id: str, email: str, name: str, roles: list[str]
) -> dict[str, Any]:
    body = {"email": email, "name": name, "roles": roles}
    path = f"/v1/orgs/{org_id}/invitations"
    return dict(await call(services, "POST", "identity", path, token=token, json=body))


async def invite_many(
    services: Services, *, token: str, org_id: str, items: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """`{items: [...]}`: identity answers each item, invited or refused with its reason."""
    path = f"/v1/orgs/{org_id}/invitations"
    body = {"items": items}
    return list((await call(services, "POST", "identity", path, token=token, json=body))["items"])


async def resend_invitation(
    services: Services, *, token: str, org_id: str, invitation_id: str
) -> dict[str, Any]:
    path = f"/v1/orgs/{org_id}/invitations/{invitation_id}/resend"
    return dict(await call(services, "POST", "identity", path, token=token))


async def revoke_invitation(
    services: Services, *, token: str, org_id: str, invitation_id: str
) -> dict[str, Any]:
    path = f"/v1/orgs/{org_id}/invitations/{invitation_id}"
    return dict(await call(services, "DELETE", "identity", path, token=token))


async def accept_invitation(
    services: Services, *, invitation_token: str, password: str
) -> dict[str, Any]:
    """No bearer: the invitation's token is the credential; the answer is a login answer."""
    path = f"/v1/invitations/{invitation_token}/accept"
    body = {"password": password}
    return dict(await call(services, "POST", "identity", path, token=None, json=body))


# ---------------------------------------------------------------- acting notices (identity)


async def acting_notices(services: Services, *, token: str, org_id: str) -> str:
    path = f"/v1/orgs/{org_id}/acting-notices"
    return str((await call(services, "GET", "identity", path, token=token))["acting_notices"])


async def set_acting_notices(services: Services, *, token: str, org_id: str, choice: str) -> str:
    path = f"/v1/orgs/{org_id}/acting-notices"
    body = {"acting_notices": choice}
    answer = await call(services, "PUT", "identity", path, token=token, json=body)
    return str(answer["acting_notices"])


# ---------------------------------------------------------------- budgets, approvals (orders)


async def budgets(services: Services, *, token: str) -> list[dict[str, Any]]:
    return list((await call(services, "GET", "orders", "/v1/budgets", token=token))["items"])


async def save_budget(
    services: Services, *, token: str, budget_id: str | None, body: dict[str, Any]
) -> dict[str, Any]:
    """Create (`budget_id` None) or replace a budget."""
    if budget_id is None:
        return dict(await call(services, "POST", "orders", "/v1/budgets", token=token, json=body))
    path = f"/v1/budgets/{budget_id}"
    return dict(await call(services, "PUT", "orders", path, token=token, json=body))


async def delete_budget(services: Services, *, token: str, budget_id: str) -> None:
    await call(services, "DELETE", "orders", f"/v1/budgets/{budget_id}", token=token)


async def orders_in(services: Services, *, token: str, status: str) -> list[dict[str, Any]]:
    """The organisation's orders in one status (orders filters them), every page, newest first."""
    return await every_page(
        services, "orders", "/v1/orders", token=token, params={"status": status}
    )


async def own_budget(services: Services, *, token: str) -> dict[str, Any] | None:
    """The budget the person's own orders count against (None: none limits them)."""
    body = await call(services, "GET", "orders", "/v1/budgets/mine", token=token)
    return dict(body["budget"]) if body["budget"] is not None else None


async def decide_order(
    services: Services, *, token: str, order_id: str, approve: bool
) -> dict[str, Any]:
    path = f"/v1/orders/{order_id}/{'approve' if approve else 'reject'}"
    return dict(await call(services, "POST", "orders", path, token=token))


# ---------------------------------------------------------------- my account (identity)


async def preferences(services: Services, *, token: str) -> dict[str, Any]:
    return dict(await call(services, "GET", "identity", "/v1/me/preferences", token=token))


async def set_preferences(
    services: Services, *, token: str, change: dict[str, Any]
) -> dict[str, Any]:
    path = "/v1/me/preferences"
    return dict(await call(services, "PUT", "identity", path, token=token, json=change))


async def create_login_link(services: Services, *, token: str) -> dict[str, Any]:
    return dict(await call(services, "POST", "identity", "/v1/me/login-link", token=token))


async def revoke_login_link(services: Services, *, token: str) -> None:
    await call(services, "DELETE", "identity", "/v1/me/login-link", token=token)


async def sign_in_with_link(services: Services, *, secret: str) -> dict[str, Any]:
    """The login answer (token, and the default company's acting session for staff)."""
    body = {"token": secret}
    return dict(
        await call(services, "POST", "identity", "/v1/auth/login-link", token=None, json=body)
    )
