"""Who the cart and orders tests need (acting staff, customer admins, reviewers); requests fired at once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.support import PASSWORD, Api, World, ok, unique

# (caller, method, service, path, keyword arguments of httpx's request)
Call = tuple[Api, str, str, str, dict[str, Any]]


def acting_staff(
    world: World, *, roles: list[str] | None = None, mode: str = "full"
) -> tuple[Api, dict[str, Any], dict[str, Any]]:
    """A new staff member, caretaker of A with the full permission, acting for A:
    (acting api, the staff user, the started session)."""
    user = world.staff(
        roles=roles or ["sales_rep"],
        permissions=["place_orders_as_customer", "view_as_customer"],
        caretaker_of=[world.org_a],
    )
    acting, started = world.act_as(world.admin.login(user["email"]), world.org_a, mode)
    return acting, user, started


def customer_admin(world: World, org: dict[str, Any]) -> tuple[Api, dict[str, Any]]:
    body = {
        "email": unique("admin") + "@example.test",
        "name": unique("Admin"),
        "password": PASSWORD,
        "kind": "customer",
        "org_id": org["id"],
        "roles": ["admin"],
    }
    user = ok(world.admin.post("identity", "/v1/users", json=body), 201)
    return world.login(user), user


def reviewer(world: World) -> Api:
    user = world.staff(roles=["security_reviewer"], permissions=[], caretaker_of=[])
    return world.admin.login(user["email"])


def at_once(calls: list[Call]) -> list[httpx.Response]:
    """Send every call at the same moment, each from its own thread and connection."""
    barrier = threading.Barrier(len(calls))

    def send(call: Call) -> httpx.Response:
        api, method, service, path, kwargs = call
        with httpx.Client(timeout=30.0) as client:
            own = Api(stack=api.stack, client=client, token=api.token)
            # Open the connection first: the barrier should release requests, not handshakes.
            own.get(service, "/healthz")
            barrier.wait(timeout=30)
            return own.request(method, service, path, **kwargs)

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(send, calls))
