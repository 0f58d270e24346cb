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

from bench.cpu import CpuMeter
from devtools.harness import PASSWORD, Api, build_world, ok, unique
from onbehalf.stack import start_stack


def _flood(url: str, bodies: list[dict[str, str]], started: Any, answers: Any) -> None:
    codes: Counter[int] = Counter()
    lock = threading.Lock()
    ready = threading.Semaphore(0)

    def one(body: dict[str, str]) -> None:
        transport = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(transport=transport, timeout=60.0) as client:
            # An attacker opens its connections at leisure; the guesses then arrive at once.
            client.get(url.replace("/v1/auth/token", "/healthz"))
            ready.release()
            started.wait()
            code = client.post(url, json=body).status_code
        with lock:
            codes[code] += 1

    threads = [threading.Thread(target=one, args=(b,)) for b in bodies]
    for thread in threads:
        thread.start()
    for _ in threads:
        ready.acquire()
    started.set()
    for thread in threads:
        thread.join()
    answers.put(codes)


def _wait_quiet(meter: CpuMeter, *, deadline_seconds: float = 30.0) -> None:
    """Until the system spends under 20 ms of CPU in 200 ms (relay and audit caught up)."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        before = sum(meter.delta().values())
        time.sleep(0.2)
        if sum(meter.delta().values()) - before < 0.02:
            return


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
    cpu_ms: dict[str, float] = {}
    by_process: dict[str, str] = {}
    codes_of: dict[str, str] = {}
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
            meter = CpuMeter.of_stack(stack)
            for name, bodies_of in floods.items():
                results[name] = []
                codes: Counter[int] = Counter()
                meter.snapshot()
                for _ in range(args.rounds):
                    # The flood runs in a process of its own, as an attacker's client would: its
                    # 100 threads must not hold this process's GIL while the login is timed.
                    started = multiprocessing.Event()
                    bodies = bodies_of()
                    answers: Any = multiprocessing.Queue()
                    flood = multiprocessing.Process(
                        target=_flood, args=(url, bodies, started, answers)
                    )
                    flood.start()
                    started.wait()
                    if bodies:
                        time.sleep(0.05)  # let the flood reach identity first
                    results[name].append(_timed_login(client, url, legit))
                    codes.update(answers.get(timeout=120))
                    flood.join()
                # What the system spent on one round (the flood and the legitimate login),
                # once the events it caused have reached the audit log.
                _wait_quiet(meter)
                deltas = meter.delta()
                cpu_ms[name] = sum(deltas.values()) * 1000 / args.rounds
                by_process[name] = ", ".join(
                    f"{process} {seconds * 1000 / args.rounds:.0f}"
                    for process, seconds in sorted(deltas.items(), key=lambda kv: -kv[1])
                    if seconds * 1000 / args.rounds >= 1
                )
                codes_of[name] = ", ".join(
                    f"{code} x{count // args.rounds}" for code, count in sorted(codes.items())
                )
    finally:
        stack.stop()
    print(f"onbehalf login flood — {args.bogus} bogus logins from 127.0.0.2, SQLite, loopback")
    print("a legitimate login from 127.0.0.1 behind them, ms\n")
    print(f"{'flood':<22}{'median':>9}{'max':>9}{'system CPU ms/round':>22}")
    for name, values in results.items():
        print(
            f"{name:<22}{statistics.median(values):>9.1f}{max(values):>9.1f}{cpu_ms[name]:>22.0f}"
        )
    print("\nper round: the flood's answers; CPU ms by process")
    for name in results:
        print(f"  {name:<20} {codes_of[name] or '-'};  {by_process[name]}")


if __name__ == "__main__":
    main()
