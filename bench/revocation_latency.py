"""Benchmark: from the response to "stop acting" until each service refuses the acting token
(budget: under one second everywhere). Polls cart, orders and catalog in parallel."""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.harness import Api, build_world
from onbehalf.stack import start_stack

WATCHED = [("cart", "/v1/cart"), ("orders", "/v1/orders"), ("catalog", "/v1/products")]


def _first_refusal(url: str, token: str, stopped: threading.Event, out: dict[str, float]) -> None:
    """Poll as fast as one client can; record when the first 401 is seen."""
    with httpx.Client(timeout=5.0) as client:
        stopped.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            response = client.get(url, headers={"Authorization": f"Bearer {token}"})
            if response.status_code == 401:
                out[url] = time.perf_counter()
                return
        print(f"{url}: still {response.status_code} after 10 s", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=50)
    args = parser.parse_args()
    password = secrets.token_urlsafe(12)
    stack = start_stack(
        Path(tempfile.mkdtemp(prefix="onbehalf-bench-")),
        admin_email="admin@bench.test",
        admin_password=password,
    )
    lags: dict[str, list[float]] = {service: [] for service, _ in WATCHED}
    try:
        with httpx.Client(timeout=15.0) as client:
            admin = Api(stack=stack, client=client).login("admin@bench.test", password)
            world = build_world(admin)
            rep = world.login(world.rep)
            for _ in range(args.sessions):
                acting, _ = world.act_as(rep, world.org_a)
                token = acting.token or ""
                for service, path in WATCHED:
                    assert acting.get(service, path).status_code == 200
                stopped = threading.Event()
                seen: dict[str, float] = {}
                pollers = [
                    threading.Thread(
                        target=_first_refusal, args=(stack.url(s) + p, token, stopped, seen)
                    )
                    for s, p in WATCHED
                ]
                for poller in pollers:
                    poller.start()
                response = acting.delete("identity", "/v1/acting-as/current")
                answered = time.perf_counter()
                assert response.status_code == 204
                stopped.set()
                for poller in pollers:
                    poller.join(timeout=30)
                for service, path in WATCHED:
                    lags[service].append(max(0.0, seen[stack.url(service) + path] - answered))
    finally:
        stack.stop()
    print(f"onbehalf revocation latency — {args.sessions} sessions stopped, SQLite, loopback\n")
    print(f"{'service':<10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for service, values in lags.items():
        values.sort()
        p99 = values[max(0, int(len(values) * 0.99) - 1)]
        print(
            f"{service:<10}{statistics.median(values) * 1000:>9.1f}{p99 * 1000:>9.1f}"
            f"{values[-1] * 1000:>9.1f}"
        )
    worst = max(v for values in lags.values() for v in values)
    print(f"\nworst case {worst * 1000:.1f} ms: {'within' if worst < 1 else 'OVER'} the 1 s budget")


if __name__ == "__main__":
    main()
