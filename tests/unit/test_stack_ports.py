"""The ports a stack hands its processes: distinct before any is bound; NATS monitoring on request."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import nats
import pytest

from onbehalf.stack import CONSOLE, SERVICES, _ports_of, free_port, port_is_free, start_nats


def test_a_port_already_handed_out_is_not_handed_out_again() -> None:
    taken = set(range(20_000, 32_000, 2))  # half of the range the picks come from
    for _ in range(500):
        port = free_port(taken=taken)
        assert port not in taken and port_is_free(port)


def test_a_stack_gets_a_distinct_port_for_each_process() -> None:
    for _ in range(200):  # six random picks from 12,000 met in about 1 of 800 stacks
        ports = _ports_of({"identity": 20_001})
        assert set(ports) == {*SERVICES, CONSOLE}
        assert ports["identity"] == 20_001
        assert len(set(ports.values())) == len(ports)


def test_a_nats_server_with_monitoring_counts_its_messages(tmp_path: Path) -> None:
    """What bench/order_throughput.py reads: the monitoring endpoint on a port of its own, its
    counters moving with the messages published; without `monitoring`, no such endpoint."""
    server = start_nats(tmp_path / "watched", monitoring=True)
    plain = start_nats(tmp_path / "plain")
    try:
        assert server.monitoring_url is not None and plain.monitoring_url is None

        def counted() -> int:
            assert server.monitoring_url is not None
            return int(httpx.get(f"{server.monitoring_url}/varz", timeout=5).json()["in_msgs"])

        async def publish() -> None:
            client = await nats.connect(server.url)
            for n in range(5):
                await client.publish("trial.counted", str(n).encode())
            await client.flush()
            await client.close()

        before = counted()
        asyncio.run(publish())
        assert counted() - before == 5
    finally:
        server.stop()
        plain.stop()


def test_the_nats_server_runs_one_scheduler_thread_unless_told_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make run` and the tests start nats-server with GOMAXPROCS=1 (docs/decisions.md); an
    operator's GOMAXPROCS in the environment wins. The server's own /varz says what it runs."""

    def gomaxprocs(name: str) -> int:
        server = start_nats(tmp_path / name, monitoring=True)
        try:
            assert server.monitoring_url is not None
            return int(httpx.get(f"{server.monitoring_url}/varz", timeout=5).json()["gomaxprocs"])
        finally:
            server.stop()

    monkeypatch.delenv("GOMAXPROCS", raising=False)
    assert gomaxprocs("default") == 1
    monkeypatch.setenv("GOMAXPROCS", "2")
    assert gomaxprocs("told") == 2
