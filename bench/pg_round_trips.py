"""Benchmark: what a cart-like write transaction costs on PostgreSQL, by driver and round trips.

Cart's change of a cart is, on PostgreSQL, seven round trips on asyncpg: BEGIN, the lock row
FOR UPDATE, the cart read, its update, a line, the outbox row, COMMIT. This runs that shape
against a throwaway server (devtools/postgres.py) from a few connections at once and prints
the CPU per transaction of this process and of postgres. With psycopg 3 installed (it is not a
dependency: `pip install "psycopg[binary]"`), it runs the same transaction in psycopg's
pipeline mode as well, in three round trips (BEGIN with the lock read, the cart read, the
writes with COMMIT), to show what fewer round trips are worth against the driver's own cost.
It also runs the whole change as one statement (a CTE in autocommit, one round trip): the floor
of writing each transaction as a single PostgreSQL statement. `--busy N` keeps N processes
spinning meanwhile, as the services do to each other."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cpu import CpuMeter
from devtools.postgres import PostgresServer, start_postgres

TABLES = """
CREATE TABLE locks (org_id text PRIMARY KEY, version int NOT NULL);
CREATE TABLE carts (id text PRIMARY KEY, org_id text NOT NULL, version int NOT NULL);
CREATE TABLE items (cart_id text, sku text, quantity int, PRIMARY KEY (cart_id, sku));
CREATE TABLE outbox (id text PRIMARY KEY, subject text, payload text,
                     created_at timestamptz DEFAULT now());
"""
# An event as the services store it is about 1.2 KB of signed CloudEvent JSON.
PAYLOAD = "x" * 1200
LOCK = "SELECT org_id, version FROM locks WHERE org_id = {} FOR UPDATE"
CART = "SELECT id, version FROM carts WHERE org_id = {}"
UPDATE = "UPDATE carts SET version = {} WHERE id = {}"
LINE = (
    "INSERT INTO items (cart_id, sku, quantity) VALUES ({}, {}, 1) "
    "ON CONFLICT (cart_id, sku) DO UPDATE SET quantity = items.quantity + 1"
)
OUTBOX = "INSERT INTO outbox (id, subject, payload) VALUES ({}, {}, {})"

# The same change as one statement in autocommit: one round trip, no BEGIN or COMMIT. The
# floor of "a write transaction as one statement" (PostgreSQL only); the services compute the
# cart's new lines in Python between the read and the writes, which this cannot.
ONE_STATEMENT = """
WITH locked AS (SELECT org_id FROM locks WHERE org_id = $1 FOR UPDATE),
     changed AS (UPDATE carts SET version = carts.version + 1 FROM locked
                 WHERE carts.org_id = locked.org_id RETURNING carts.id),
     line AS (INSERT INTO items (cart_id, sku, quantity) SELECT id, $2, 1 FROM changed
              ON CONFLICT (cart_id, sku) DO UPDATE SET quantity = items.quantity + 1)
INSERT INTO outbox (id, subject, payload) VALUES ($3, $4, $5)
"""

Transaction = Callable[[Any, str], Awaitable[None]]


def _numbered(template: str) -> str:
    return template.format(*(f"${n}" for n in range(1, template.count("{}") + 1)))


def _percent(template: str) -> str:
    return template.format(*(["%s"] * template.count("{}")))


async def on_asyncpg(connection: asyncpg.Connection, org_id: str) -> None:
    async with connection.transaction():
        await connection.fetchrow(_numbered(LOCK), org_id)
        cart = await connection.fetchrow(_numbered(CART), org_id)
        await connection.execute(_numbered(UPDATE), cart["version"] + 1, cart["id"])
        await connection.execute(_numbered(LINE), cart["id"], "SKU-1")
        await connection.executemany(
            _numbered(OUTBOX), [(uuid.uuid4().hex, "cart.item_added", PAYLOAD)]
        )


async def as_one_statement(connection: asyncpg.Connection, org_id: str) -> None:
    await connection.execute(
        ONE_STATEMENT, org_id, "SKU-1", uuid.uuid4().hex, "cart.item_added", PAYLOAD
    )


async def on_psycopg_pipeline(connection: Any, org_id: str) -> None:
    async with connection.pipeline(), connection.transaction():
        cursor = connection.cursor()
        await cursor.execute(_percent(LOCK), (org_id,))
        await cursor.fetchone()  # one round trip: BEGIN and the lock read
        await cursor.execute(_percent(CART), (org_id,))
        cart_id, version = await cursor.fetchone()
        await cursor.execute(_percent(UPDATE), (version + 1, cart_id))
        await cursor.execute(_percent(LINE), (cart_id, "SKU-1"))
        await cursor.executemany(_percent(OUTBOX), [(uuid.uuid4().hex, "cart.item_added", PAYLOAD)])
    # Leaving the transaction queued COMMIT; the pipeline's end sent the writes with it.


def _spin() -> None:
    while True:
        pass


async def measure(
    name: str,
    connections: list[Any],
    transaction: Transaction,
    server: PostgresServer,
    per_connection: int,
) -> None:
    for index, connection in enumerate(connections):  # prepares each statement once
        await transaction(connection, f"org-{index}")

    async def run(index: int, connection: Any) -> None:
        for _ in range(per_connection):
            await transaction(connection, f"org-{index}")

    meter = CpuMeter()
    meter.add("client", os.getpid())
    meter.add("postgres", server.pid, with_children=True)
    meter.snapshot()
    wall = time.perf_counter()
    await asyncio.gather(*(run(index, c) for index, c in enumerate(connections)))
    wall = time.perf_counter() - wall
    spent = meter.delta()
    client, postgres = spent["client"], spent["postgres"]
    count = per_connection * len(connections)
    print(
        f"  {name:34s} {count / wall:6.0f} txn/s   CPU per transaction: this process "
        f"{1000 * client / count:.3f} ms + postgres {1000 * postgres / count:.3f} ms = "
        f"{1000 * (client + postgres) / count:.3f} ms"
    )


async def main(args: argparse.Namespace) -> None:
    try:
        psycopg: Any = importlib.import_module("psycopg")
    except ImportError:
        psycopg = None
    server = start_postgres(Path(tempfile.mkdtemp(prefix="pg-round-trips-")))
    spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(args.busy)]
    try:
        server.create_database("round_trips")
        dsn = f"postgresql://postgres@/round_trips?host={server.socket_dir}&port={server.port}"
        setup = await asyncpg.connect(dsn)
        await setup.execute(TABLES)
        for index in range(args.connections):
            await setup.execute("INSERT INTO locks VALUES ($1, 0)", f"org-{index}")
            await setup.execute(
                "INSERT INTO carts VALUES ($1, $2, 0)", f"cart-{index}", f"org-{index}"
            )
        await setup.close()
        for spinner in spinners:
            spinner.start()
        per_connection = args.transactions // args.connections
        print(
            f"onbehalf PostgreSQL round trips — a cart-like write transaction, "
            f"{args.connections} connections, {per_connection * args.connections} transactions "
            f"per round, {args.busy} busy processes beside"
        )
        for _ in range(args.rounds):
            connections: list[Any] = [await asyncpg.connect(dsn) for _ in range(args.connections)]
            await measure("asyncpg, 7 round trips", connections, on_asyncpg, server, per_connection)
            await measure(
                "asyncpg, one statement (floor)",
                connections,
                as_one_statement,
                server,
                per_connection,
            )
            for connection in connections:
                await connection.close()
            if psycopg is None:
                continue
            connections = [
                await psycopg.AsyncConnection.connect(dsn, prepare_threshold=0)
                for _ in range(args.connections)
            ]
            await measure(
                "psycopg 3 pipeline, 3 round trips",
                connections,
                on_psycopg_pipeline,
                server,
                per_connection,
            )
            for connection in connections:
                await connection.close()
        if psycopg is None:
            print('  (psycopg 3 not installed: pip install "psycopg[binary]" to compare)')
    finally:
        for spinner in spinners:
            spinner.kill()
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transactions", type=int, default=4000, help="per round and driver")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--busy", type=int, default=0, help="spinning processes meanwhile")
    asyncio.run(main(parser.parse_args()))
