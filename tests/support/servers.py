"""A uvicorn server run inside a test's own event loop, on a free port."""

from __future__ import annotations

import asyncio

import uvicorn


async def started(server: uvicorn.Server, timeout: float = 10.0) -> asyncio.Task[None]:
    """`server` serving in a task of this loop, once it listens (or an assertion error)."""
    task = asyncio.create_task(server.serve())
    deadline = asyncio.get_running_loop().time() + timeout
    while not server.started:
        assert not task.done(), "the server stopped before it started"
        assert asyncio.get_running_loop().time() < deadline, "the server never started"
        await asyncio.sleep(0.01)  # polling the condition, with its deadline above
    return task


def port_of(server: uvicorn.Server) -> int:
    """The port a server started on port 0 listens on."""
    return int(server.servers[0].sockets[0].getsockname()[1])
