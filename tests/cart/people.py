"""Who the cart and orders tests need (acting staff, customer admins, reviewers: the builders of
tests.support under the names these tests use); requests fired at once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.support import Api, World, acting_rep, customer_admin, security_reviewer

__all__ = ["Call", "acting_staff", "at_once", "customer_admin", "reviewer"]

# (caller, method, service, path, keyword arguments of httpx's request)
Call = tuple[Api, str, str, str, dict[str, Any]]


def acting_staff(
    world: World, *, roles: list[str] | None = None, mode: str = "full"
) -> tuple[Api, dict[str, Any], dict[str, Any]]:
    """A new staff member, caretaker of A with the full permission, acting for A:
    (acting api, the staff user, the started session)."""
    return acting_rep(world, world.org_a, roles=roles, mode=mode)


def reviewer(world: World) -> Api:
    return security_reviewer(world.admin)


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
