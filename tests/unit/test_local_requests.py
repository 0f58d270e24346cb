"""Requests answered in the process (co-located services): the reply, the responder's own context,
time-outs that leave the responder to finish, and who answers once a responder stops."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Mapping
from typing import cast

import pytest
from nats.aio.client import Client as NATS
from nats.errors import TimeoutError as NatsTimeoutError

from libs.common.local_requests import Responder, answer_locally, answered_here, request

# Never used: every request below is answered in the process, so none reaches a connection.
NO_BUS = cast(NATS, None)
SERVICE = contextvars.ContextVar("service", default="nobody")


def _echo(tag: str) -> Responder:
    async def responder(payload: bytes, headers: Mapping[str, str] | None) -> bytes:
        return b"|".join([tag.encode(), payload, (headers or {}).get("x", "").encode()])

    return responder


async def test_a_request_is_answered_by_the_responder_in_this_process() -> None:
    local = answer_locally("test.echo", _echo("cart"))
    try:
        assert answered_here("test.echo")
        reply = await request(NO_BUS, "test.echo", b"body", timeout=1.0, headers={"x": "h"})
        assert reply == b"cart|body|h"
    finally:
        local.cancel()
    assert not answered_here("test.echo")


async def test_the_responder_runs_in_its_own_context_not_the_callers() -> None:
    """Log fields (structlog's context variables) stay the responder's service's, and what the
    responder binds does not leak into the caller."""
    seen: list[str] = []

    async def responder(payload: bytes, headers: Mapping[str, str] | None) -> bytes:
        seen.append(SERVICE.get())
        SERVICE.set("changed by the responder")
        return b""

    registering = contextvars.copy_context()
    registering.run(SERVICE.set, "cart")
    local = registering.run(answer_locally, "test.context", responder)
    try:
        SERVICE.set("orders")
        await request(NO_BUS, "test.context", b"", timeout=1.0)
        await request(NO_BUS, "test.context", b"", timeout=1.0)
    finally:
        local.cancel()
    assert seen == ["cart", "cart"]  # each call in a fresh copy of the registration's context
    assert SERVICE.get() == "orders"


async def test_a_late_reply_times_out_like_one_over_nats_and_the_responder_still_finishes() -> None:
    release, finished = asyncio.Event(), asyncio.Event()

    async def slow(payload: bytes, headers: Mapping[str, str] | None) -> bytes:
        await release.wait()
        finished.set()
        return b"late"

    local = answer_locally("test.slow", slow)
    try:
        with pytest.raises(NatsTimeoutError):
            await request(NO_BUS, "test.slow", b"", timeout=0.05)
        # Over NATS a responder does not learn that its caller gave up: neither does this one.
        release.set()
        await asyncio.wait_for(finished.wait(), timeout=5.0)
    finally:
        local.cancel()


async def test_the_latest_responder_answers_and_an_earlier_one_again_once_it_stops() -> None:
    first = answer_locally("test.two", _echo("first"))
    second = answer_locally("test.two", _echo("second"))
    try:
        assert await request(NO_BUS, "test.two", b"", timeout=1.0) == b"second||"
        second.cancel()
        assert await request(NO_BUS, "test.two", b"", timeout=1.0) == b"first||"
    finally:
        first.cancel()
        second.cancel()  # twice is harmless
    assert not answered_here("test.two")
