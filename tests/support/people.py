"""One builder per kind of person the tests need, each made the one way (`new_user`, `act_as`)."""

from __future__ import annotations

from typing import Any

from devtools.harness import Api, World, act_as, new_user

# What a caretaking sales rep holds by default: acting in both modes, ordering for the customer.
REP_PERMISSIONS = ["place_orders_as_customer", "view_as_customer"]


def platform_admin(world: World) -> tuple[Api, dict[str, Any]]:
    """A new platform admin (staff, every permission the role needs), signed in."""
    user = new_user(world.admin, kind="staff", roles=["platform_admin"])
    return world.login(user), user


def caretaker_rep(
    world: World,
    org: dict[str, Any],
    *,
    roles: list[str] | None = None,
    permissions: list[str] | None = None,
) -> dict[str, Any]:
    """A new staff member (a sales rep unless `roles` says otherwise), caretaker of `org`."""
    return world.staff(
        roles=roles or ["sales_rep"],
        permissions=REP_PERMISSIONS if permissions is None else permissions,
        caretaker_of=[org],
    )


def csr_supervisor(world: World, org: dict[str, Any]) -> dict[str, Any]:
    """A customer-service supervisor, caretaker of `org` (may take over idle cart locks)."""
    return caretaker_rep(world, org, roles=["csr_supervisor"])


def security_reviewer(admin: Api) -> Api:
    """A new security reviewer (reads audit, sessions, findings; changes nothing), signed in."""
    user = new_user(admin, kind="staff", roles=["security_reviewer"])
    return admin.login(user["email"])


def customer_admin(world: World, org: dict[str, Any]) -> tuple[Api, dict[str, Any]]:
    """A new admin of customer `org`, signed in: (their API, the user)."""
    user = new_user(world.admin, kind="customer", roles=["admin"], org_id=org["id"])
    return world.login(user), user


def buyer(world: World, org: dict[str, Any]) -> tuple[Api, dict[str, Any]]:
    """A new buyer of customer `org`, signed in: (their API, the user)."""
    user = new_user(world.admin, kind="customer", roles=["buyer"], org_id=org["id"])
    return world.login(user), user


def acting_rep(
    world: World, org: dict[str, Any], *, roles: list[str] | None = None, mode: str = "full"
) -> tuple[Api, dict[str, Any], dict[str, Any]]:
    """A new caretaker of `org` acting for it: (the acting API, the staff user, the session)."""
    user = caretaker_rep(world, org, roles=roles)
    acting, started = act_as(world.admin.login(user["email"]), org["id"], mode)
    return acting, user, started


__all__ = [
    "REP_PERMISSIONS",
    "acting_rep",
    "buyer",
    "caretaker_rep",
    "csr_supervisor",
    "customer_admin",
    "platform_admin",
    "security_reviewer",
]
