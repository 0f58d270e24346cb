"""The services' server (onbehalf/server.py): asleep while idle, awake at once when asked to stop."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx
import uvicorn

from onbehalf.server import QuietServer, collector_paused
from tests.support.servers import port_of, started

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def _probe(scope: Scope, receive: Receive, send: Send) -> None:
    """The smallest app with a lifespan: 200 and an empty body to every request."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


class _CountingServer(QuietServer):
    ticks = 0

    async def on_tick(self, counter: int) -> bool:
        self.ticks += 1
        return await super().on_tick(counter)


def _server(wake_seconds: float = 1.0) -> _CountingServer:
    config = uvicorn.Config(
        _probe, host="127.0.0.1", port=0, log_level="warning", log_config=None, lifespan="on"
    )
    server = _CountingServer(config)
    server.wake_seconds = wake_seconds
    return server


def test_an_idle_server_wakes_once_a_second_not_ten_times() -> None:
    """uvicorn's own loop wakes every 0.1 s (20 times in this window); this one once a
    second, for the Date header."""

    async def scenario() -> int:
        server = _server()
        task = await started(server)
        before = server.ticks
        await asyncio.sleep(2.0)  # the window measured, not a synchronisation
        ticks = server.ticks - before
        server.should_exit = True
        await asyncio.wait_for(task, 10.0)
        return ticks

    assert asyncio.run(scenario()) <= 3


def test_a_stop_request_wakes_the_loop_at_once() -> None:
    """Asked to stop (as the signal handler and onbehalf.colocated ask), the server does not
    wait out its sleep: here an hour long, and the server stops within the test's deadline."""

    async def scenario() -> bool:
        server = _server(wake_seconds=3600.0)
        task = await started(server)
        server.should_exit = True
        await asyncio.wait_for(task, 10.0)
        return server.started

    assert asyncio.run(scenario())


def test_it_answers_with_a_date_header() -> None:
    """The Date header uvicorn refreshes in its loop is there from the first request."""

    async def scenario() -> httpx.Response:
        server = _server()
        task = await started(server)
        try:
            async with httpx.AsyncClient() as client:
                return await client.get(f"http://127.0.0.1:{port_of(server)}/")
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 10.0)

    response = asyncio.run(scenario())
    assert response.status_code == 200
    assert response.headers["date"].endswith(" GMT")


def test_the_collector_is_paused_while_an_app_loads_and_runs_again_after() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled(), "a collector someone else paused stays paused"
    finally:
        gc.enable()
