"""Benchmark: audit lag (HTTP response of a change -> its event queryable) and ingest rate from a backlog.

Lag: staff members acting for customers place orders concurrently (each loop adds an item, then
orders); a poller thread follows `GET /v1/audit/events?order=asc` by cursor and notes when each
`orders.order.placed` event (keyed by order id) first shows up. A sample's lag is that moment
minus the moment the order's 201 arrived (0 when it was queryable before that), so it includes
up to one poll round trip.

Ingest: audit is stopped, a backlog of events is published straight to JetStream (as relays
would, Nats-Msg-Id = event id), audit is started, and the clock runs until its database holds
every one of them."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.load import CartEmptied, add_and_order, client_session
from devtools.harness import Api, World, build_world, ok
from devtools.postgres import PostgresServer, start_postgres
from devtools.stacks import connect_bus
from libs.common.events import EventContext, build_event, encode, nats_subject
from libs.common.signing import load_signing_key, signing_key_path
from onbehalf.stack import SERVICES, Stack, start_service, start_stack, wait_healthy

ADMIN = "admin@bench.test"
# The bus lets a service publish only its own events, signed: the backlog poses as catalog's.
BACKLOG_EMITTER = "catalog"
BACKLOG_TYPE = "catalog.bench.backlog"


def _poll(
    stack: Stack,
    admin_token: str,
    cursor: str,
    seen_at: dict[str, float],
    stop: threading.Event,
) -> None:
    """Follow the audit log by cursor and note when each order's event first shows up.

    In a thread of its own, so that its clock is not held up by the ordering clients' loop."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(timeout=30.0) as client:
        while not stop.is_set():
            response = client.get(
                stack.url("audit") + "/v1/audit/events",
                params={"order": "asc", "cursor": cursor, "limit": 500},
                headers=headers,
            )
            now = time.perf_counter()
            items = ok(response)["items"]
            for item in items:
                if item["type"] == "com.onbehalf.orders.order.placed":
                    seen_at.setdefault(item["data"]["order_id"], now)
            if items:
                cursor = str(items[-1]["seq"])
            else:
                stop.wait(0.005)  # an empty page: poll again in 5 ms (the resolution)


async def _lag(
    stack: Stack, admin_token: str, acting_tokens: list[str], sku: str, events: int
) -> tuple[list[float], float]:
    """Returns the lags (seconds) of `events` orders and the orders placed per second."""
    placed_at: dict[str, float] = {}
    seen_at: dict[str, float] = {}
    urls = {name: stack.url(name) for name in ("cart", "orders")}
    async with client_session(64) as session:
        async with session.get(
            stack.url("audit") + "/v1/audit/events",
            params={"limit": 1},
            headers={"Authorization": f"Bearer {admin_token}"},
        ) as response:
            newest = (await response.json())["items"]
        cursor = str(newest[0]["seq"]) if newest else "0"

        async def work(token: str, share: int) -> None:
            placed = 0
            while placed < share:
                try:
                    order = await add_and_order(
                        session, urls, token=token, sku=sku, idempotency_key=secrets.token_hex(8)
                    )
                except CartEmptied:  # a checkout emptied the cart between the add and the order
                    continue
                placed_at[order.order_id] = order.answered_at
                placed += 1

        stop = threading.Event()
        poller = threading.Thread(
            target=_poll, args=(stack, admin_token, cursor, seen_at, stop), daemon=True
        )
        poller.start()
        shares = [events // len(acting_tokens)] * len(acting_tokens)
        shares[0] += events - sum(shares)
        began = time.perf_counter()
        await asyncio.gather(*(work(t, s) for t, s in zip(acting_tokens, shares, strict=True)))
        rate = events / (time.perf_counter() - began)
        deadline = time.perf_counter() + 120.0
        while not placed_at.keys() <= seen_at.keys():
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{len(placed_at.keys() - seen_at.keys())} orders never audited")
            await asyncio.sleep(0.05)  # waiting for the poller to see the last ones
        stop.set()
        poller.join()
    # Negative: queryable before the 201 arrived (the relay can be quicker than the response).
    return [seen_at[order_id] - at for order_id, at in placed_at.items()], rate


async def _publish_backlog(stack: Stack, count: int) -> None:
    key = load_signing_key(
        signing_key_path(stack.secrets_dir, BACKLOG_EMITTER), service=BACKLOG_EMITTER
    )
    nc = await connect_bus(stack, BACKLOG_EMITTER)
    try:
        js = nc.jetstream()
        context = EventContext(
            actor_id=secrets.token_hex(8),
            actor_org_id=None,
            subject_org_id=secrets.token_hex(8),
            subject_user_id=None,
            acting_session_id=None,
            policy_revision="bench",
        )
        futures = []
        for n in range(count):
            event = build_event(
                source=f"/onbehalf/{BACKLOG_EMITTER}",
                type=BACKLOG_TYPE,
                data={"n": n},
                context=context,
                signing_key=key,
            )
            futures.append(
                await js.publish_async(
                    nats_subject(BACKLOG_TYPE),
                    encode(event),
                    headers={"Nats-Msg-Id": event.get_id()},
                )
            )
        await asyncio.gather(*futures)
    finally:
        await nc.close()


async def _count(url: str) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(text("SELECT count(*) FROM audit_records")) or 0)
    finally:
        await engine.dispose()


def _ingest(stack: Stack, audit_db: str, backlog: int) -> dict[str, float]:
    stack.services["audit"].stop()
    before = asyncio.run(_count(audit_db))
    began = time.perf_counter()
    asyncio.run(_publish_backlog(stack, backlog))
    published = time.perf_counter() - began

    began = time.perf_counter()
    audit = start_service(
        "audit",
        port=stack.ports["audit"],
        env=stack.service_env("audit"),
        log_dir=stack.workdir / "logs",
    )
    stack.services["audit"] = audit
    wait_healthy(audit)
    healthy = time.perf_counter()
    first = None
    while True:
        count = asyncio.run(_count(audit_db)) - before
        now = time.perf_counter()
        if count > 0 and first is None:
            first = now
        if count >= backlog:
            break
        time.sleep(0.05)  # a benchmark's sampling period, not synchronisation
    assert first is not None
    return {
        "publish_seconds": published,
        "start_seconds": healthy - began,
        "ingest_seconds": now - healthy,
        "rate_from_healthy": backlog / (now - healthy),
        "rate_from_first": backlog / max(now - first, 1e-9),
    }


def _setup(admin: Api, workers: int) -> tuple[World, list[str]]:
    world = build_world(admin)
    rep = world.login(world.rep)
    tokens = []
    for n in range(workers):
        body = {"name": f"Bench customer {n}", "contract_number": f"B-{n}", "country": "DE"}
        org = ok(admin.post("identity", "/v1/orgs", json=body), 201)
        ok(admin.put("identity", f"/v1/orgs/{org['id']}/caretakers/{world.rep['id']}"), 204)
        acting, _ = world.act_as(rep, org)
        tokens.append(acting.token or "")
    return world, tokens


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="orders whose lag is measured")
    parser.add_argument("--backlog", type=int, default=50_000, help="events in the backlog")
    parser.add_argument("--workers", type=int, default=4, help="acting sessions placing orders")
    parser.add_argument("--postgres", action="store_true", help="all services on PostgreSQL")
    args = parser.parse_args()

    password = secrets.token_urlsafe(12)
    workdir = Path(tempfile.mkdtemp(prefix="onbehalf-bench-"))
    postgres: PostgresServer | None = start_postgres(workdir) if args.postgres else None
    urls = {n: postgres.create_database(f"bench_{n}") for n in SERVICES} if postgres else {}
    stack = start_stack(workdir, admin_email=ADMIN, admin_password=password, database_urls=urls)
    audit_db = urls.get("audit") or f"sqlite+aiosqlite:///{workdir / 'db' / 'audit.db'}"
    results: dict[str, Any] = {}
    try:
        with httpx.Client(timeout=30.0) as client:
            admin = Api(stack=stack, client=client).login(ADMIN, password)
            world, tokens = _setup(admin, args.workers)
        lags, rate = asyncio.run(_lag(stack, admin.token or "", tokens, world.skus[1], args.events))
        results["lag"] = lags
        results["orders_per_second"] = rate
        results["ingest"] = _ingest(stack, audit_db, args.backlog)
    finally:
        stack.stop()
        if postgres:
            postgres.stop()

    raw = results["lag"]
    lags = [max(0.0, lag) for lag in raw]  # already queryable at the response: no lag
    ingest = results["ingest"]
    backend = "PostgreSQL (pgserver)" if args.postgres else "SQLite"
    print(
        f"onbehalf audit — {backend}, uvicorn 1 worker per service, {args.workers} acting clients"
    )
    print()
    print(f"{'measure':<44}{'value':>12}")
    print(f"{'orders placed while acting (events timed)':<44}{len(lags):>12}")
    print(f"{'orders/s during the lag run':<44}{results['orders_per_second']:>12.0f}")
    already = sum(1 for lag in raw if lag <= 0.0) / len(raw) * 100
    print(f"{'queryable before the 201 arrived (%)':<44}{already:>12.1f}")
    print(f"{'  raw p50, response to seen (ms)':<44}{statistics.median(raw) * 1000:>12.1f}")
    print(f"{'audit lag p50 (ms)':<44}{statistics.median(lags) * 1000:>12.1f}")
    print(f"{'audit lag p99 (ms)  [budget 250]':<44}{_percentile(lags, 0.99) * 1000:>12.1f}")
    print(f"{'audit lag max (ms)':<44}{max(lags) * 1000:>12.1f}")
    print(f"{'backlog events (published straight to JetStream)':<44}{args.backlog:>12}")
    print(f"{'  published in (s)':<44}{ingest['publish_seconds']:>12.1f}")
    print(f"{'  audit start to healthy (s)':<44}{ingest['start_seconds']:>12.1f}")
    print(f"{'  healthy to all recorded (s)':<44}{ingest['ingest_seconds']:>12.1f}")
    print(f"{'ingest rate from healthy (events/s)':<44}{ingest['rate_from_healthy']:>12.0f}")
    print(f"{'ingest rate from first record (events/s)':<44}{ingest['rate_from_first']:>12.0f}")


if __name__ == "__main__":
    main()
