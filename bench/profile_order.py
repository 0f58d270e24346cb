"""Benchmark aid: where each service's CPU goes while orders are placed, by package.

Starts the stack with every service under cProfile on the CPU clock (devtools.profiled_uvicorn),
places orders as bench/order_throughput.py does, switches the profilers on after a warm-up and
off after the measured orders, and prints each service's own (self) CPU by package: SQLAlchemy,
FastAPI, nats-py, asyncio, our libs/common and services, the C parts (sqlite3, Ed25519,
pydantic-core). The profiler slows Python down about 1.5-2x; read the shares, not the times."""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import pstats
import re
import secrets
import signal
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.load import client_session
from bench.order_throughput import _place, acting_customers
from devtools.harness import Api
from devtools.postgres import start_postgres
from onbehalf.stack import SERVICES, start_stack

_C_PARTS = ("sqlite3", "ed25519", "pydantic_core", "greenlet", "writelines", "send")


def _package(path: str, function: str) -> str:
    if "site-packages/" in path:
        return path.split("site-packages/")[1].split("/")[0]
    root = str(Path(__file__).resolve().parents[1]) + "/"
    if path.startswith(root):
        return "/".join(path[len(root) :].split("/")[:2])
    if path == "~":
        named = re.sub(r"<method '(\w+)' of '([\w.]+)'.*", r"\2.\1", function)
        return f"C: {named}" if any(part in named for part in _C_PARTS) else "C: other built-ins"
    if "/lib/python3" in path:
        return "stdlib: " + path.split("/lib/python3")[1].split("/", 2)[1].removesuffix(".py")
    return path


def by_package(profile: Path, lines: int) -> str:
    stats = pstats.Stats(str(profile)).stats  # type: ignore[attr-defined]
    seconds: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()
    for (path, _line, function), (_primitive, count, own, _cumulative, _callers) in stats.items():
        key = _package(path, function)
        seconds[key] += own
        calls[key] += count
    total = sum(seconds.values())
    out = [f"  {profile.stem}: {total:.2f} s of profiled CPU, {sum(calls.values()):,} calls"]
    for key, spent in seconds.most_common(lines):
        out.append(f"    {100 * spent / total:5.1f} %  {calls[key]:9,} calls  {key}")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=20, help="orders per customer before")
    parser.add_argument("--orders", type=int, default=60, help="orders per customer measured")
    parser.add_argument("--lines", type=int, default=14, help="packages shown per service")
    parser.add_argument("--postgres", action="store_true", help="all services on PostgreSQL")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="onbehalf-profile-"))
    profiles = workdir / "profiles"
    profiles.mkdir()
    os.environ["ONBEHALF_PROFILE_DIR"] = str(profiles)
    postgres = start_postgres(workdir / "pg") if args.postgres else None
    database_urls = (
        {name: postgres.create_database(name) for name in SERVICES} if postgres else None
    )
    password = secrets.token_urlsafe(12)
    stack = start_stack(
        workdir / "stack",
        admin_email="admin@bench.test",
        admin_password=password,
        database_urls=database_urls,
    )
    profiled = [name for name in ("cart", "orders", "audit", "catalog") if name in stack.services]
    try:
        urls = {name: stack.url(name) for name in SERVICES}
        with httpx.Client(timeout=30.0) as client:
            admin = Api(stack=stack, client=client).login("admin@bench.test", password)
            sessions = acting_customers(admin, args.customers)

        async def run(orders: int, tag: str) -> None:
            async with client_session(args.customers * 2) as session:
                await asyncio.gather(
                    *(
                        _place(session, urls, token, sku, orders, f"{tag}{index}-")
                        for index, (token, sku) in enumerate(sessions)
                    )
                )

        asyncio.run(run(args.warmup, "w"))
        for name in profiled:
            os.kill(stack.services[name].process.pid, signal.SIGUSR1)
        asyncio.run(run(args.orders, "m"))
        for name in profiled:
            os.kill(stack.services[name].process.pid, signal.SIGUSR2)
        deadline = time.monotonic() + 30
        while not all((profiles / f"{name}.prof").exists() for name in profiled):
            if time.monotonic() > deadline:
                raise RuntimeError("a profiled service did not write its statistics")
            time.sleep(0.1)  # polling for the files, not synchronisation
        time.sleep(0.5)  # a file seen may still be being written
        orders = args.customers * args.orders
        database = "PostgreSQL" if postgres else "SQLite"
        print(
            f"onbehalf order profile — {orders} orders, {database}, self CPU by package "
            "(cProfile, CPU clock)"
        )
        for name in profiled:
            print(by_package(profiles / f"{name}.prof", args.lines))
    finally:
        stack.stop()
        if postgres:
            postgres.stop()


if __name__ == "__main__":
    main()
