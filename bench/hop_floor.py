"""Benchmark: the CPU floor of each kind of hop an order is made of, with nothing of ours in it.

DESIGN.md fixes what an audited order is made of: HTTP requests from the client, price
quotes over NATS request-reply, an event per state change (signed, stored in an outbox,
published to JetStream, consumed by audit, its signature checked, chained), each change in
a database transaction of its own service. This measures one hop of each kind bare — a
FastAPI endpoint returning a constant, a nats-py request answered by a constant, a JetStream
publish taken by a durable pull consumer, an Ed25519 signature and its check, a SQLite write
transaction of one row — as CPU summed over every process taking part, and adds them up for
the fewest hops the design allows an order. What the services do besides (tokens, policy,
validation, SQL, business rules) comes on top of that floor."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]  # no stubs in the venv (types-psutil)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi import FastAPI

from onbehalf.stack import free_port, start_nats

REQUEST_SUBJECT = "floor.request"
EVENT_SUBJECT = "floor.events.placed"
STREAM = "FLOOR"
# An event as the services emit it is about 1.2 KB of CloudEvent JSON with its signature.
EVENT_BYTES = 1200
REPLY = b'{"ok": true, "lines": [{"sku": "SKU-1", "unit_price": "9.50"}]}'

bare_app = FastAPI()


@bare_app.get("/floor")
async def floor() -> dict[str, str]:
    return {"ok": "yes"}


def _loop_run(coroutine: Awaitable[Any]) -> Any:
    """Run as the services run: on uvloop when it is installed (uvicorn picks it)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] installs it
        return asyncio.run(coroutine)  # type: ignore[arg-type]
    return uvloop.run(coroutine)  # type: ignore[arg-type]


async def _workers(count: int, concurrency: int, one: Callable[[], Awaitable[Any]]) -> None:
    left = count

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await one()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


# -- roles, each in a process of its own (started by main) ---------------------------------


async def _responder(url: str) -> None:
    import nats

    nc = await nats.connect(url)

    async def answer(message: Any) -> None:
        await message.respond(REPLY)

    await nc.subscribe(REQUEST_SUBJECT, queue="floor", cb=answer)
    await nc.flush()
    print("ready", flush=True)
    # Until main closes our stdin.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await nc.drain()


async def _requester(url: str, count: int, concurrency: int) -> None:
    import nats

    nc = await nats.connect(url)
    payload = b'{"org_id": "0d9c7b1e-1111-4c1e-9f3e-2a6f3c1b0a11", "skus": ["SKU-1"]}'

    async def one() -> None:
        await nc.request(REQUEST_SUBJECT, payload, timeout=5.0)

    await _workers(200, concurrency, one)  # warm-up
    started = time.process_time()
    await _workers(count, concurrency, one)
    print(json.dumps({"cpu": time.process_time() - started}), flush=True)
    await nc.drain()


async def _publisher(url: str, count: int, window: int) -> None:
    """Publishes as the outbox relay does: pipelined windows, one ack awaited per event."""
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream()
    body = b"x" * EVENT_BYTES
    started = time.process_time()
    for first in range(0, count, window):
        futures = [
            await js.publish_async(EVENT_SUBJECT, body, headers={"Nats-Msg-Id": f"e-{index}"})
            for index in range(first, min(first + window, count))
        ]
        await asyncio.gather(*futures)
    print(json.dumps({"cpu": time.process_time() - started}), flush=True)
    await nc.drain()


async def _consumer(url: str, count: int, batch: int) -> None:
    """Takes as audit does: a durable pull consumer, batches, one ack per message."""
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream()
    subscription = await js.pull_subscribe(EVENT_SUBJECT, durable="floor-audit", stream=STREAM)
    print("ready", flush=True)
    taken = 0
    started: float | None = None
    while taken < count:
        with contextlib.suppress(nats.errors.TimeoutError, asyncio.TimeoutError):
            for message in await subscription.fetch(batch, timeout=0.5):
                if started is None:
                    started = time.process_time()
                await message.ack()
                taken += 1
    print(json.dumps({"cpu": time.process_time() - (started or 0.0)}), flush=True)
    await nc.drain()


# -- in-process figures ------------------------------------------------------------------


def _signing(count: int) -> tuple[float, float]:
    """CPU ms to build and sign an event as a service does, and to check it as audit does."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from libs.common.events import EventContext, build_event
    from libs.common.signing import (
        EventPublicKey,
        EventSigningKey,
        envelope_object,
        key_id,
        verify_signature,
    )

    private = Ed25519PrivateKey.generate()
    key = EventSigningKey(service="orders", kid=key_id(private.public_key()), private_key=private)
    public: dict[str, EventPublicKey] = {key.kid: key.public()}
    context = EventContext(
        actor_id="a" * 36,
        actor_org_id="b" * 36,
        subject_org_id="c" * 36,
        subject_user_id=None,
        acting_session_id="d" * 36,
        policy_revision="e" * 64,
    )
    data = {"order_id": "f" * 36, "total": "19.00", "currency": "EUR", "items": [{"sku": "S-1"}]}
    started = time.process_time()
    built = [
        build_event(
            source="/onbehalf/orders",
            type="com.onbehalf.orders.order.placed",
            data=data,
            context=context,
            signing_key=key,
        )
        for _ in range(count)
    ]
    signed = time.process_time() - started
    documents = [envelope_object(event) for event in built]
    started = time.process_time()
    for document in documents:
        verify_signature(document, public)
    checked = time.process_time() - started
    return signed * 1000 / count, checked * 1000 / count


def _sqlite_write(folder: Path, count: int) -> float:
    """CPU ms of a write transaction of one row on the services' SQLite engine."""
    from sqlalchemy import Column, MetaData, String, Table, insert

    from libs.common.db import create_engine, create_tables

    metadata = MetaData()
    rows = Table(
        "floor", metadata, Column("id", String(36), primary_key=True), Column("body", String)
    )
    statement = insert(rows)

    async def run() -> float:
        engine = create_engine(f"sqlite+aiosqlite:///{folder / 'floor.db'}")
        await create_tables(engine, metadata)
        for index in range(100):
            async with engine.begin() as connection:
                await connection.execute(statement, {"id": f"w-{index}", "body": "x" * 200})
        started = time.process_time()
        for index in range(count):
            async with engine.begin() as connection:
                await connection.execute(statement, {"id": f"r-{index}", "body": "x" * 200})
        spent = time.process_time() - started
        await engine.dispose()
        return spent * 1000 / count

    result: float = _loop_run(run())
    return result


# -- orchestration -------------------------------------------------------------------------


@dataclass
class Role:
    process: subprocess.Popen[str]

    @classmethod
    def start(cls, *args: str) -> Role:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.hop_floor", "--role", *args],
            cwd=Path(__file__).resolve().parents[1],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        return cls(process)

    def line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"a role ended early (exit {self.process.wait()})")
        return line

    def cpu(self) -> float:
        return float(json.loads(self.line())["cpu"])

    def stop(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _cpu_of(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def _http(seconds: float) -> tuple[float, float, str]:
    """Requests/s and server CPU ms per request of the bare endpoint (wrk when present)."""
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.hop_floor:bare_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=Path(__file__).resolve().parents[1],
    )
    url = f"http://127.0.0.1:{port}/floor"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url, timeout=1.0).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # polling the server's start, not synchronisation
        wrk = shutil.which("wrk")
        before = _cpu_of(server.pid)
        if wrk:
            output = subprocess.run(
                [wrk, "-t1", "-c16", f"-d{seconds:.0f}s", url],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            total = int(
                next(line for line in output.splitlines() if "requests in" in line).split()[0]
            )
            tool = "wrk"
        else:

            async def load() -> int:
                done = 0
                stop_at = time.monotonic() + seconds
                async with httpx.AsyncClient() as client:

                    async def worker() -> None:
                        nonlocal done
                        while time.monotonic() < stop_at:
                            await client.get(url)
                            done += 1

                    await asyncio.gather(*(worker() for _ in range(16)))
                return done

            total = asyncio.run(load())
            tool = "httpx"
        spent = _cpu_of(server.pid) - before
        return total / seconds, spent * 1000 / total, tool
    finally:
        server.terminate()
        server.wait(timeout=10)


def _request_reply(url: str, nats_pid: int, count: int) -> float:
    responder = Role.start("responder", "--url", url)
    try:
        responder.line()
        requester = Role.start("requester", "--url", url, "--count", str(count))
        # The requester warms up before it starts counting; the server and the responder are
        # measured over its whole run, so their figure is a little above the floor.
        before = _cpu_of(nats_pid) + _cpu_of(responder.process.pid)
        own = requester.cpu()
        after = _cpu_of(nats_pid) + _cpu_of(responder.process.pid)
        requester.stop()
        return (own + after - before) * 1000 / (count + 200)
    finally:
        responder.stop()


def _events(url: str, nats_pid: int, count: int) -> float:
    import nats
    from nats.js.api import StorageType, StreamConfig

    async def provision() -> None:
        nc = await nats.connect(url)
        await nc.jetstream().add_stream(
            StreamConfig(name=STREAM, subjects=["floor.events.>"], storage=StorageType.FILE)
        )
        await nc.drain()

    asyncio.run(provision())
    consumer = Role.start("consumer", "--url", url, "--count", str(count))
    try:
        consumer.line()
        before = _cpu_of(nats_pid)
        publisher = Role.start("publisher", "--url", url, "--count", str(count))
        published = publisher.cpu()
        taken = consumer.cpu()
        spent = _cpu_of(nats_pid) - before
        publisher.stop()
        return (published + taken + spent) * 1000 / count
    finally:
        consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=5000, help="operations per figure")
    parser.add_argument("--seconds", type=float, default=5.0, help="HTTP load, seconds")
    args = parser.parse_args()
    if args.role:
        roles: dict[str, Callable[[], Awaitable[None]]] = {
            "responder": lambda: _responder(args.url),
            "requester": lambda: _requester(args.url, args.count, 16),
            "publisher": lambda: _publisher(args.url, args.count, 16),
            "consumer": lambda: _consumer(args.url, args.count, 64),
        }
        _loop_run(roles[args.role]())
        return

    workdir = Path(tempfile.mkdtemp(prefix="onbehalf-floor-"))
    nats_server = start_nats(workdir / "nats")
    try:
        rate, http_ms, tool = _http(args.seconds)
        rr_ms = _request_reply(nats_server.url, nats_server.process.pid, args.count)
        event_ms = _events(nats_server.url, nats_server.process.pid, args.count)
    finally:
        nats_server.stop()
    sign_ms, verify_ms = _signing(2000)
    write_ms = _sqlite_write(workdir, 2000)

    print(
        "onbehalf hop floor — one hop of each kind, bare (CPU ms summed over the processes taking part)"
    )
    print(f"  HTTP request, FastAPI endpoint returning a constant ({tool}, 16 connections)")
    print(f"      {rate:8.0f} req/s   server CPU {http_ms:6.3f} ms/request")
    print(f"  NATS request/reply (requester + nats-server + responder)       {rr_ms:6.3f} ms")
    print(
        f"  JetStream event of {EVENT_BYTES} B: publish + ack, pull + ack (both + server)"
        f" {event_ms:6.3f} ms"
    )
    print(f"  build and sign an event (Ed25519)                              {sign_ms:6.3f} ms")
    print(f"  check an event's signature                                      {verify_ms:6.3f} ms")
    print(f"  SQLite write transaction, one row, services' engine            {write_ms:6.3f} ms")
    # The fewest hops DESIGN.md allows one order (add an item, place the order, audited):
    # 2 HTTP requests; 3 request/replies (the quote of the add; cart's snapshot and checkout
    # asked once; its quote); 3 events (item added, order placed, cart checked out), each
    # signed, published, consumed and checked, each change in a write transaction of its
    # service, and audit's append (one transaction per batch: not counted).
    per_event = sign_ms + event_ms + verify_ms
    floor_ms = 2 * http_ms + 3 * rr_ms + 3 * per_event + 3 * write_ms
    print(
        "  fewest hops of an audited order as designed: 2 HTTP + 3 request/replies + 3 events + 3 writes"
    )
    print(
        f"      2 x {http_ms:.3f} + 3 x {rr_ms:.3f} + 3 x {per_event:.3f} + 3 x {write_ms:.3f}"
        f" = {floor_ms:.2f} ms of CPU before any work of ours (budget 6 ms)"
    )
    as_built = 2 * http_ms + 4 * rr_ms + 3 * per_event + 3 * write_ms
    print(f"  as built (4 request/replies): {as_built:.2f} ms")


if __name__ == "__main__":
    main()
