"""Idle timeout and maximum lifetime, on a stack of its own with short settings."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import httpx
import pytest

from devtools.stacks import stack_on_postgres
from onbehalf.stack import Stack, start_stack
from tests.support import Api, World, build_world, ok, wait_until

IDLE_SECONDS = 2
MAX_SECONDS = 6


SHORT = {
    "ONBEHALF_ACTING_IDLE_SECONDS": str(IDLE_SECONDS),
    "ONBEHALF_ACTING_SESSION_MAX_SECONDS": str(MAX_SECONDS),
    "ONBEHALF_ACTING_ACTIVITY_REPORT_SECONDS": "0.2",
    "ONBEHALF_SESSION_SWEEP_SECONDS": "0.2",
}
ADMIN = "admin@short.test"


@pytest.fixture(scope="module")
def short_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, str]]:
    password = secrets.token_urlsafe(12)
    stack = start_stack(
        tmp_path_factory.mktemp("short"),
        admin_email=ADMIN,
        admin_password=password,
        extra_env=SHORT,
    )
    yield stack, password
    stack.stop()


@pytest.fixture(scope="module")
def short_stack_on_postgres(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Stack, str]]:
    """Identity on PostgreSQL: its sweep asks "is any session due?" there too."""
    password = secrets.token_urlsafe(12)
    with stack_on_postgres(
        tmp_path_factory.mktemp("short-pg"),
        services=("identity",),
        admin_email=ADMIN,
        admin_password=password,
        extra_env=SHORT,
    ) as stack:
        yield stack, password


def _world(stack: Stack, password: str) -> Iterator[World]:
    with httpx.Client(timeout=15.0) as client:
        yield build_world(Api(stack=stack, client=client).login(ADMIN, password))


@pytest.fixture
def short_world(short_stack: tuple[Stack, str]) -> Iterator[World]:
    yield from _world(*short_stack)


@pytest.fixture
def short_world_on_postgres(short_stack_on_postgres: tuple[Stack, str]) -> Iterator[World]:
    yield from _world(*short_stack_on_postgres)


def _session_record(world: World, session_id: str) -> dict[str, object]:
    sessions = ok(world.admin.get("identity", f"/v1/orgs/{world.org_a['id']}/acting-sessions"))
    return next(s for s in sessions["items"] if s["session_id"] == session_id)


@pytest.mark.parametrize(
    "database",
    ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def test_an_idle_session_ends_and_its_token_is_refused_everywhere(
    database: str, request: pytest.FixtureRequest
) -> None:
    short_world: World = request.getfixturevalue(
        "short_world" if database == "sqlite" else "short_world_on_postgres"
    )
    rep = short_world.login(short_world.rep)
    acting, started = short_world.act_as(rep, short_world.org_a)
    ended = wait_until(
        lambda: _session_record(short_world, started["session_id"])["ended_at"] and True,
        timeout=IDLE_SECONDS + 10,
        what="the idle session ended by identity",
    )
    assert ended
    assert _session_record(short_world, started["session_id"])["end_reason"] == "idle_timeout"
    wait_until(
        lambda: acting.get("cart", "/v1/cart").status_code == 401,
        what="cart refuses the idle session",
    )


def test_use_keeps_a_session_alive_until_its_maximum_lifetime(short_world: World) -> None:
    rep = short_world.login(short_world.rep)
    acting, started = short_world.act_as(rep, short_world.org_a)
    began = time.monotonic()
    # Working in the cart for longer than the idle timeout keeps the session alive...
    while time.monotonic() - began < IDLE_SECONDS * 2:
        assert acting.get("cart", "/v1/cart").status_code == 200
        time.sleep(0.2)  # pacing the simulated user, not synchronisation
    assert _session_record(short_world, started["session_id"])["ended_at"] is None
    # ...but not past the maximum lifetime.
    wait_until(
        lambda: acting.get("cart", "/v1/cart").status_code == 401,
        timeout=MAX_SECONDS + 10,
        interval=0.2,
        what="the session refused after its maximum lifetime",
    )
    wait_until(
        lambda: _session_record(short_world, started["session_id"])["end_reason"] == "expired",
        what="identity records the expiry",
    )
