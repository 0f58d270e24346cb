"""Benchmark: the read figures — `GET /v1/cart` as acting staff and `GET /v1/products` (50
products, customer prices, a promotion) — requests/s with 16 connections on one uvicorn
worker, and the CPU milliseconds the serving service spends per request (psutil, user +
system). wrk when it is installed (Debian package `wrk`), an httpx client otherwise."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import shutil
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.acting_overhead import _measure, _wrk
from bench.cpu import CpuMeter
from devtools.harness import Api, build_world, ok
from onbehalf.stack import start_stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=10, help="per endpoint, with wrk")
    parser.add_argument("--requests", type=int, default=3000, help="per endpoint, with httpx")
    args = parser.parse_args()
    use_wrk = shutil.which("wrk") is not None

    password = secrets.token_urlsafe(12)
    workdir = Path(tempfile.mkdtemp(prefix="onbehalf-bench-reads-"))
    stack = start_stack(workdir, admin_email="admin@bench.test", admin_password=password)
    try:
        with httpx.Client(timeout=15.0) as client:
            admin = Api(stack=stack, client=client).login("admin@bench.test", password)
            world = build_world(admin)
            org_id = world.org_a["id"]
            skus = list(world.skus)
            for index in range(50 - len(skus)):
                sku = f"BENCH-{index:03d}-{secrets.token_hex(3)}"
                body = {"sku": sku, "name": f"Bench {index}", "price": "20.00", "currency": "EUR"}
                ok(admin.post("catalog", "/v1/products", json=body), 201)
                skus.append(sku)
            for sku in skus[3:13]:  # customer prices on ten of them
                ok(
                    admin.put(
                        "catalog", f"/v1/customers/{org_id}/prices/{sku}", json={"price": "17.50"}
                    )
                )
            ok(admin.put("catalog", f"/v1/customers/{org_id}/assortment", json={"skus": skus}))
            promotion = {
                "name": "Bench promo",
                "kind": "percentage",
                "value": "10",
                "org_ids": [org_id],
            }
            ok(admin.post("catalog", "/v1/promotions", json=promotion), 201)
            acting, _ = world.act_as(world.login(world.rep), world.org_a)
            ok(acting.post("cart", "/v1/cart/items", json={"sku": skus[0], "quantity": 2}))
            ok(acting.post("cart", "/v1/cart/items", json={"sku": skus[5], "quantity": 1}))
            buyer = world.login(world.buyer_a)
            assert len(ok(buyer.get("catalog", "/v1/products"))["items"]) == 50
        meter = CpuMeter.of_stack(stack)
        load = f"wrk {args.seconds} s" if use_wrk else f"httpx {args.requests} requests"
        print(f"onbehalf reads — {load}, {args.concurrency} connections, 1 worker, SQLite")
        for label, service, path, token in (
            ("GET /v1/cart (acting staff)", "cart", "/v1/cart", acting.token or ""),
            ("GET /v1/products (buyer)", "catalog", "/v1/products", buyer.token or ""),
            ("GET /v1/products (acting)", "catalog", "/v1/products", acting.token or ""),
        ):
            url = stack.url(service) + path
            asyncio.run(_measure(url, token, requests=200, concurrency=4))  # warm
            meter.snapshot()
            if use_wrk:
                median, p99, rate = _wrk(
                    url, token, seconds=args.seconds, concurrency=args.concurrency
                )
                count = rate * args.seconds
            else:
                latencies, rate = asyncio.run(
                    _measure(url, token, requests=args.requests, concurrency=args.concurrency)
                )
                latencies.sort()
                median, p99 = (
                    latencies[len(latencies) // 2],
                    latencies[int(len(latencies) * 0.99) - 1],
                )
                count = args.requests
            cpu = meter.delta()
            print(
                f"  {label:<30} {rate:8.0f} req/s  median {median * 1000:6.1f} ms  "
                f"p99 {p99 * 1000:6.1f} ms  {service} CPU {cpu[service] * 1000 / count:5.2f} ms/request"
            )
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
