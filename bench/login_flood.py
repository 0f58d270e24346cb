"""Benchmark: a legitimate login's latency while 100 bogus logins hit identity at once
(target: under 200 ms). The flood comes from another loopback address (127.0.0.2), as an
attacker's would; three kinds: unknown accounts, one victim account, 100 real accounts."""

from __future__ import annotations

import argparse
import multiprocessing
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.harness import PASSWORD, Api, build_world, ok, unique
from onbehalf.stack import start_stack


def _flood(url: str, bodies: list[dict[str, str]], started: Any) -> Counter[int]:
    codes: Counter[int] = Counter()
    lock = threading.Lock()

    def one(body: dict[str, str]) -> None:
        transport = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(transport=transport, timeout=60.0) as client:
            started.wait()
            code = client.post(url, json=body).status_code
        with lock:
            codes[code] += 1

    threads = [threading.Thread(target=one, args=(b,)) for b in bodies]
    for thread in threads:
        thread.start()
    started.set()
    for thread in threads:
        thread.join()
    return codes


def _timed_login(client: httpx.Client, url: str, email: str) -> float:
    begun = time.perf_counter()
    response = client.post(url, json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return (time.perf_counter() - begun) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bogus", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    password = secrets.token_urlsafe(16)
    stack = start_stack(
        Path(tempfile.mkdtemp(prefix="onbehalf-bench-")),
        admin_email="admin@bench.test",
        admin_password=password,
        # The floods of every round come from one address: let it make them all.
        extra_env={"ONBEHALF_LOGIN_MAX_FAILURES_PER_ADDRESS": str(args.bogus * args.rounds * 4)},
    )
    url = stack.url("identity") + "/v1/auth/token"
    results: dict[str, list[float]] = {}
    try:
        with httpx.Client(timeout=60.0) as client:
            admin = Api(stack=stack, client=client).login("admin@bench.test", password)
            world = build_world(admin)
            legit = world.buyer_a["email"]
            victims = [
                ok(
                    admin.post(
                        "identity",
                        "/v1/users",
                        json={
                            "email": unique("victim") + "@example.test",
                            "name": "Victim",
                            "password": PASSWORD,
                            "kind": "customer",
                            "org_id": world.org_b["id"],
                            "roles": ["buyer"],
                        },
                    ),
                    201,
                )["email"]
                for _ in range(args.bogus)
            ]
            floods: dict[str, Callable[[], list[dict[str, str]]]] = {
                "alone (no flood)": lambda: [],
                "unknown accounts": lambda: [
                    {"email": unique("nobody") + "@example.test", "password": "x" * 12}
                    for _ in range(args.bogus)
                ],
                "one victim account": lambda: [
                    {"email": victims[0], "password": unique("guess")} for _ in range(args.bogus)
                ],
                "100 real accounts": lambda: [
                    {"email": v, "password": unique("guess")} for v in victims[: args.bogus]
                ],
            }
            for name, bodies_of in floods.items():
                results[name] = []
                for _ in range(args.rounds):
                    # The flood runs in a process of its own, as an attacker's client would: its
                    # 100 threads must not hold this process's GIL while the login is timed.
                    started = multiprocessing.Event()
                    bodies = bodies_of()
                    flood = multiprocessing.Process(target=_flood, args=(url, bodies, started))
                    flood.start()
                    started.wait()
                    if bodies:
                        time.sleep(0.05)  # let the flood reach identity first
                    results[name].append(_timed_login(client, url, legit))
                    flood.join()
    finally:
        stack.stop()
    print(f"onbehalf login flood — {args.bogus} bogus logins from 127.0.0.2, SQLite, loopback")
    print("a legitimate login from 127.0.0.1 behind them, ms\n")
    print(f"{'flood':<22}{'median':>9}{'max':>9}")
    for name, values in results.items():
        print(f"{name:<22}{statistics.median(values):>9.1f}{max(values):>9.1f}")


if __name__ == "__main__":
    main()
