"""Benchmark: orders placed while acting, per second, until every one is in the audit log.

Several staff members act for several customers at once; each loop adds an item to its
customer's cart and places an order. The clock stops when the audit log holds every
`orders.order.placed` event, so the figure includes auditing. Printed beside the rate: the
CPU milliseconds each process spent per audited order, the messages per order into and
out of the NATS server (its monitoring endpoint, opened for the benchmark), and what the load
generator itself (bench/load.py, in this process, on the same cores) spent per order."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx
import psutil  # type: ignore[import-untyped]  # no stubs in the venv (types-psutil)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cpu import CpuMeter, report
from bench.load import add_and_order, client_session
from devtools.harness import Api, build_world, ok
from devtools.postgres import start_postgres
from devtools.stacks import start_replica
from onbehalf.stack import SERVICES, Stack, start_stack


async def _place(
    session: aiohttp.ClientSession,
    urls: dict[str, str],
    token: str,
    sku: str,
    orders: int,
    tag: str,
) -> list[float]:
    """One client's orders, one after another; returns the latencies of its POST /v1/orders."""
    latencies = []
    for index in range(orders):
        placed = await add_and_order(
            session, urls, token=token, sku=sku, idempotency_key=f"{tag}-{index}"
        )
        latencies.append(placed.latency)
    return latencies


# The services an order passes through: the ones `--processes` starts more of.
ORDER_PATH = ("catalog", "cart", "orders")


def _another_process(stack: Stack, number: int) -> dict[str, str]:
    """Start process `number` of each service on the order's path (a co-located group once,
    with all its members); the URLs they answer on."""
    urls: dict[str, str] = {}
    for name in ORDER_PATH:
        if name not in urls:
            start_replica(stack, name)
            for member in stack.group_of(name):
                urls[member] = f"http://127.0.0.1:{stack.replicas[f'{member}-{number}'].port}"
    return urls


def acting_customers(admin: Api, customers: int) -> list[tuple[str, str]]:
    """(acting token, SKU to order) for each of `customers` customers, a rep acting for each."""
    sessions = []
    for _ in range(customers):
        world = build_world(admin)
        acting, _ = world.act_as(world.login(world.rep), world.org_a)
        sessions.append((acting.token or "", world.skus[1]))
    return sessions


class _AuditCount:
    """How many events of a type the audit log holds, read on from where the last look
    stopped (chain order, after the last record seen): polling until every order is audited
    would otherwise re-read all of them each time, and the benchmark's own reads would count
    as audit's CPU per order."""

    def __init__(self, reader: Api, event_type: str) -> None:
        self._reader = reader
        self._type = event_type
        self._count = 0
        self._after: int | None = None

    def now(self) -> int:
        while True:
            params: dict[str, str | int] = {"type": self._type, "limit": 500, "order": "asc"}
            if self._after is not None:
                params["cursor"] = str(self._after)
            page = ok(self._reader.get("audit", "/v1/audit/events", params=params))
            items = page["items"]
            self._count += len(items)
            if items:
                self._after = int(items[-1]["seq"])
            if not page["next_cursor"]:
                return self._count


def _cpu_of(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _machine_busy() -> float:
    """CPU seconds the whole machine has been busy (every core; processes and the kernel's
    own work, such as loopback networking and disk writes, which no process is charged)."""
    times = psutil.cpu_times()
    return float(times.user + times.nice + times.system + times.irq + times.softirq)


def _nats_messages(stack: Stack) -> tuple[int, int]:
    """(messages into, messages out of) the stack's NATS server so far."""
    assert stack.nats is not None and stack.nats.monitoring_url is not None
    varz = httpx.get(f"{stack.nats.monitoring_url}/varz", timeout=5.0).json()
    return int(varz["in_msgs"]), int(varz["out_msgs"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=16, help="concurrent acting sessions")
    parser.add_argument("--orders", type=int, default=50, help="orders per customer")
    parser.add_argument("--postgres", action="store_true", help="all services on PostgreSQL")
    parser.add_argument(
        "--idle-seconds", type=float, default=5.0, help="measure the idle system's CPU this long"
    )
    parser.add_argument(
        "--colocate",
        default=None,
        help='services sharing a process, e.g. "cart+orders" (default: ONBEHALF_COLOCATE, none)',
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="processes of each service on the order's path (catalog, cart, orders; of their "
        "group when co-located), the clients spread over them",
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="onbehalf-bench-"))
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
        nats_monitoring=True,
        colocate=args.colocate,
    )
    try:
        urls_of = [{name: stack.url(name) for name in SERVICES}]
        for number in range(2, args.processes + 1):
            urls_of.append({**urls_of[0], **_another_process(stack, number)})
        with httpx.Client(timeout=30.0) as client:
            admin = Api(stack=stack, client=client).login("admin@bench.test", password)
            sessions = acting_customers(admin, args.customers)

            async def run() -> list[float]:
                async with client_session(args.customers * 2) as session:
                    results = await asyncio.gather(
                        *(
                            _place(
                                session,
                                urls_of[index % len(urls_of)],
                                token,
                                sku,
                                args.orders,
                                f"c{index}",
                            )
                            for index, (token, sku) in enumerate(sessions)
                        )
                    )
                return [latency for result in results for latency in result]

            meter = CpuMeter.of_stack(stack, postgres_pid=postgres.pid if postgres else None)
            # What the system spends doing nothing (polls, timers), to tell it from the orders.
            meter.snapshot()
            time.sleep(args.idle_seconds)
            idle = meter.delta()
            meter.snapshot()
            messages_before = _nats_messages(stack)
            load = psutil.Process()
            load_before = _cpu_of(load)
            machine_before = _machine_busy()
            began = time.perf_counter()
            latencies = asyncio.run(run())
            placed_at = time.perf_counter()
            load_cpu = _cpu_of(load) - load_before
            total = args.customers * args.orders
            audited = _AuditCount(admin, "com.onbehalf.orders.order.placed")
            while audited.now() < total:
                time.sleep(0.05)  # polling the audit log, not synchronisation
            audited_at = time.perf_counter()
            cpu = meter.delta()
            machine = _machine_busy() - machine_before
            wakeups = meter.wakeups()
            messages = [
                after - before
                for before, after in zip(messages_before, _nats_messages(stack), strict=True)
            ]
        latencies.sort()
        database = "PostgreSQL" if postgres else "SQLite"
        shared = "".join(f", {'+'.join(group)} in one process" for group in stack.colocated)
        if args.processes > 1:
            shared += f", {args.processes} processes of each on the order's path"
        print(
            f"onbehalf order throughput — {database}, {args.customers} acting sessions, "
            f"{total} orders{shared}"
        )
        print(
            f"  placing (add item + POST /v1/orders): {total / (placed_at - began):8.1f} orders/s"
        )
        print(
            f"  POST /v1/orders median {latencies[len(latencies) // 2] * 1000:.1f} ms, "
            f"p99 {latencies[int(len(latencies) * 0.99) - 1] * 1000:.1f} ms"
        )
        print(
            f"  until audited:                        {total / (audited_at - began):8.1f} orders/s"
        )
        idle_rate = sum(idle.values()) / args.idle_seconds
        print(
            report(
                cpu,
                total,
                what="audited order (add item + order, until audited)",
                extra=[
                    f"  idle system: {idle_rate * 1000:.1f} ms CPU per second "
                    f"({idle_rate * (audited_at - began) * 1000 / total:.2f} ms of the total per "
                    "order at this rate)",
                    f"  NATS messages per audited order: {messages[0] / total:.1f} into the "
                    f"server, {messages[1] / total:.1f} out of it (its /varz counters)",
                    "  wake-ups per audited order (voluntary context switches, all threads): "
                    + ", ".join(
                        f"{name} {count / total:.1f}"
                        for name, count in sorted(wakeups.items(), key=lambda item: -item[1])
                    )
                    + f"; total {sum(wakeups.values()) / total:.1f}",
                    f"  the load generator (this process, not counted above): "
                    f"{load_cpu * 1000 / total:.2f} ms CPU per order while placing",
                    # The host's speed swings by up to 40 % within minutes; the load
                    # generator's fixed work swings with it, so this ratio compares runs
                    # made in different quarter hours (docs/performance.md, "Afternoon").
                    f"  the system per order in load-generator units (system CPU / load CPU): "
                    f"{sum(cpu.values()) / load_cpu:.2f}",
                    # What the cores allow: N orders/s on C cores needs at most C / N seconds
                    # of the machine per order, whoever spends them.
                    f"  the whole machine (/proc/stat, every process and the kernel): "
                    f"{machine * 1000 / total:.2f} ms CPU per order, of which "
                    f"{(machine - sum(cpu.values()) - load_cpu) * 1000 / total:.2f} in neither "
                    f"the system's processes nor the load generator; {psutil.cpu_count()} cores "
                    f"allow {psutil.cpu_count() * total / machine:.0f} orders/s at that cost",
                ],
            )
        )
    finally:
        stack.stop()
        if postgres:
            postgres.stop()


if __name__ == "__main__":
    main()
