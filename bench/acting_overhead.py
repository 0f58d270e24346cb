"""Benchmark: what acting costs. Median latency of the same reads by a customer's buyer and by a
staff member acting for that customer, interleaved in one run (budget: at most 10 % more)."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from onbehalf.stack import start_stack
from tests.support import Api, build_world, ok

ENDPOINTS = [("catalog", "/v1/products"), ("cart", "/v1/cart"), ("orders", "/v1/orders")]


async def _measure(
    url: str, token: str, *, requests: int, concurrency: int
) -> tuple[list[float], float]:
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(requests):
        queue.put_nowait(index)
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(timeout=10.0, limits=limits) as client:

        async def worker() -> None:
            while not queue.empty():
                queue.get_nowait()
                started = time.perf_counter()
                response = await client.get(url, headers=headers)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise RuntimeError(f"{url}: {response.status_code} {response.text}")

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return latencies, requests / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--requests", type=int, default=2000, help="per endpoint and caller, per round"
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    password = secrets.token_urlsafe(12)
    workdir = Path(tempfile.mkdtemp(prefix="onbehalf-bench-"))
    stack = start_stack(workdir, admin_email="admin@bench.test", admin_password=password)
    try:
        with httpx.Client(timeout=15.0) as client:
            admin = Api(stack=stack, client=client).login("admin@bench.test", password)
            world = build_world(admin)
            buyer = world.login(world.buyer_a)
            acting, _ = world.act_as(world.login(world.rep), world.org_a)
            ok(buyer.post("cart", "/v1/cart/items", json={"sku": world.skus[0], "quantity": 2}))
            ok(buyer.post("orders", "/v1/orders", headers={"Idempotency-Key": "bench"}), 201)
            ok(buyer.post("cart", "/v1/cart/items", json={"sku": world.skus[1], "quantity": 1}))
        callers = {"customer buyer": buyer.token or "", "acting staff": acting.token or ""}
        print(
            f"onbehalf acting overhead — {args.rounds} rounds x {args.requests} requests, "
            f"{args.concurrency} concurrent, uvicorn 1 worker per service, SQLite\n"
        )
        print(f"{'endpoint':<18}{'caller':<16}{'median ms':>10}{'p99 ms':>9}{'req/s':>9}")
        for service, path in ENDPOINTS:
            url = stack.url(service) + path
            results: dict[str, list[float]] = {name: [] for name in callers}
            rates: dict[str, list[float]] = {name: [] for name in callers}
            asyncio.run(_measure(url, callers["customer buyer"], requests=200, concurrency=4))
            for _ in range(args.rounds):
                for name, token in callers.items():  # interleaved: same conditions for both
                    latencies, rate = asyncio.run(
                        _measure(url, token, requests=args.requests, concurrency=args.concurrency)
                    )
                    results[name].extend(latencies)
                    rates[name].append(rate)
            medians = {}
            for name in callers:
                values = sorted(results[name])
                medians[name] = statistics.median(values)
                p99 = values[int(len(values) * 0.99) - 1]
                print(
                    f"{service + path:<18}{name:<16}{medians[name] * 1000:>10.2f}"
                    f"{p99 * 1000:>9.2f}{statistics.mean(rates[name]):>9.0f}"
                )
            overhead = medians["acting staff"] / medians["customer buyer"] - 1
            verdict = "within" if overhead <= 0.10 else "OVER"
            print(
                f"{'':<18}{'acting overhead':<16}{overhead * 100:>9.1f}%  ({verdict} the 10 % budget)"
            )
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
