"""A request whose database connection is lost under it (a server restart, a failover) gets a
clean 503 with Retry-After from the shared error handlers, never a 500; other database errors
stay 500s (they are bugs, not outages)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db import create_engine
from libs.common.web import install_error_handlers
from tests.support.servers import port_of, started

pytestmark = pytest.mark.postgres


def _app(engine: AsyncEngine) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/lose-the-connection")
    async def lose_the_connection() -> dict[str, str]:
        async with engine.connect() as connection:
            # The backend ends itself, as a restart ends every backend: the statement's
            # connection is gone before it answers.
            await connection.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        return {"unreachable": "yes"}

    @app.post("/break-a-statement")
    async def break_a_statement() -> dict[str, str]:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT * FROM no_such_table"))
        return {"unreachable": "yes"}

    return app


async def _served(app: FastAPI) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", log_config=None)
    server = uvicorn.Server(config)
    task = await started(server)
    return server, task, f"http://127.0.0.1:{port_of(server)}"


def test_a_lost_database_connection_is_a_503_to_retry_and_a_bad_statement_a_500(
    postgres: Any,
) -> None:
    url = postgres.create_database("lost_connection")

    async def scenario() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        engine = create_engine(url)
        server, task, base = await _served(_app(engine))
        try:
            async with httpx.AsyncClient(base_url=base, timeout=10.0) as client:
                lost = await client.post("/lose-the-connection")
                again = await client.post("/lose-the-connection")  # on a fresh connection
                broken = await client.post("/break-a-statement")
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 10.0)
            await engine.dispose()
        return lost, again, broken

    lost, again, broken = asyncio.run(scenario())
    for response in (lost, again):
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "1"
        assert response.json() == {
            "detail": "the database connection was lost; retry the request",
            "reason": None,
        }
    assert broken.status_code == 500
    assert broken.json() == {"detail": "internal error", "reason": None}
