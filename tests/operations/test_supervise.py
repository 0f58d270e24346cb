"""A supervised stack: a killed process comes back and the system catches up; restarts need no wait."""

from __future__ import annotations

import itertools
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from onbehalf.stack import Stack, port_is_free, start_stack, wait_healthy
from onbehalf.supervise import Supervisor
from tests.support import Api, audit_events, build_world, wait_until

ADMIN = "admin@supervise.test"


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[tuple[Stack, Supervisor, list[str], str]]:
    password = secrets.token_urlsafe(16)
    stack = start_stack(tmp_path / "stack", admin_email=ADMIN, admin_password=password)
    said: list[str] = []
    try:
        yield stack, Supervisor(stack, say=said.append, first_backoff=0.1), said, password
    finally:
        stack.stop()


def test_a_killed_service_is_restarted_and_catches_up(
    supervised: tuple[Stack, Supervisor, list[str], str],
) -> None:
    stack, supervisor, said, password = supervised
    with httpx.Client(timeout=15.0) as client:
        admin = Api(stack=stack, client=client).login(ADMIN, password)
        world = build_world(admin)
        stack.services["audit"].kill()  # kill -9: no chance to finish anything
        assert supervisor.check() == ["audit"]
        rep = world.login(world.rep)
        _, started = world.act_as(rep, world.org_a)  # happens while audit may still be down
        wait_healthy(stack.services["audit"])
        assert any("audit exited" in line and "restarting" in line for line in said)
        wait_until(
            lambda: audit_events(admin, session_id=started["session_id"]),
            what="the event made while audit was down is audited once it is back",
        )
        assert supervisor.check() == []  # nothing else is down


def test_a_killed_nats_comes_back_on_the_same_port(
    supervised: tuple[Stack, Supervisor, list[str], str],
) -> None:
    stack, supervisor, _said, password = supervised
    assert stack.nats is not None
    port = stack.nats.port
    stack.nats.kill()
    wait_until(lambda: supervisor.check() == ["nats"], what="NATS restarted")
    assert stack.nats.port == port and stack.nats.process.poll() is None
    with httpx.Client(timeout=15.0) as client:
        admin = Api(stack=stack, client=client).login(ADMIN, password)
        world = build_world(admin)
        rep = world.login(world.rep)
        acting, _started = world.act_as(rep, world.org_a)
        assert acting.delete("identity", "/v1/acting-as/current").status_code == 204
        # Revocation travels over the restarted NATS: the services reconnected by themselves.
        wait_until(lambda: acting.get("cart", "/v1/cart").status_code == 401, what="revoked")


def test_back_off_grows_while_a_process_keeps_dying(tmp_path: Path) -> None:
    stack = start_stack(tmp_path / "stack", admin_email=ADMIN, admin_password="x" * 16)
    now = [0.0]
    try:
        supervisor = Supervisor(stack, say=lambda _: None, first_backoff=1.0, clock=lambda: now[0])
        restarts = []
        for _ in range(4):
            stack.services["catalog"].kill()
            while not supervisor.check():
                now[0] += 0.25  # the clock moves; no real waiting
            restarts.append(now[0])
        gaps = [b - a for a, b in itertools.pairwise(restarts)]
        assert gaps == sorted(gaps) and gaps[-1] >= 4.0, gaps
    finally:
        stack.stop()


def test_a_port_left_in_time_wait_counts_as_free() -> None:
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()
        accepted.close()  # the server side closes first: its end waits in TIME_WAIT
        client.close()
    # Before, the check bound without SO_REUSEADDR and called this port busy for a minute.
    assert port_is_free(port)
