"""The order benchmarks' load generator: acting staff adding an item and placing the order.

Over aiohttp, not httpx: the benchmark's clients run on the same two cores as the system, and
an httpx request costs ≈ 3.7 ms of the client's CPU (7.5 ms per order, add + place), which
took 40 % of the machine and held the rate near 95 orders/s whatever the system could do.
aiohttp parses HTTP in C: ≈ 0.4 ms a request (docs/performance.md, "The load generator")."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import aiohttp


def client_session(connections: int) -> aiohttp.ClientSession:
    """A session keeping up to `connections` connections alive (one per client and service)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=aiohttp.ClientTimeout(total=30.0),
    )


@dataclass(frozen=True)
class PlacedOrder:
    """An order the system answered with 201: its id, when the answer came, how long it took."""

    order_id: str
    answered_at: float
    latency: float


class CartEmptied(Exception):
    """422 on placing: a checkout emptied the cart between the add and the order."""


async def add_and_order(
    session: aiohttp.ClientSession,
    urls: dict[str, str],
    *,
    token: str,
    sku: str,
    idempotency_key: str,
) -> PlacedOrder:
    """One unit of load: add one of `sku` to the cart in view, then order the cart."""
    headers = {"Authorization": f"Bearer {token}"}
    async with session.post(
        urls["cart"] + "/v1/cart/items", headers=headers, json={"sku": sku, "quantity": 1}
    ) as added:
        body = await added.read()
        if added.status != 200:
            raise RuntimeError(f"add: {added.status} {body!r}")
    started = time.perf_counter()
    async with session.post(
        urls["orders"] + "/v1/orders", headers={**headers, "Idempotency-Key": idempotency_key}
    ) as placed:
        body = await placed.read()
    answered_at = time.perf_counter()
    if placed.status == 422:
        raise CartEmptied(body.decode(errors="replace"))
    if placed.status != 201:
        raise RuntimeError(f"place: {placed.status} {body!r}")
    order = json.loads(body)
    return PlacedOrder(
        order_id=str(order["id"]), answered_at=answered_at, latency=answered_at - started
    )
