"""Provisioning on a NATS cluster: the replica count comes from the setting, and provisioning
again with another count changes existing streams and the bucket (one server grown into three)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from libs.common.bus import CHECKPOINT_STREAM, DEADLETTER_STREAM, EVENTS_STREAM
from libs.common.bus_permissions import PROVISIONER
from libs.common.revocation import REVOCATION_BUCKET
from onbehalf.nats_setup import BusSecrets, connect_as, init_bus_secrets, provision
from tests.cluster.harness import NatsCluster, start_nats_cluster

STREAMS = [EVENTS_STREAM, DEADLETTER_STREAM, CHECKPOINT_STREAM, f"KV_{REVOCATION_BUCKET}"]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[NatsCluster, BusSecrets]]:
    bus = init_bus_secrets(tmp_path / "secrets")
    running = start_nats_cluster(tmp_path / "nats", bus.server_config, size=3)
    try:
        yield running, bus
    finally:
        running.stop()


async def replicas(url: str, bus: BusSecrets) -> dict[str, int]:
    nc = await connect_as(url, bus, PROVISIONER)
    try:
        js = nc.jetstream()
        return {name: (await js.stream_info(name)).config.num_replicas or 1 for name in STREAMS}
    finally:
        await nc.close()


def test_provisioning_again_changes_the_replica_count(
    cluster: tuple[NatsCluster, BusSecrets],
) -> None:
    running, bus = cluster
    seed = bus.seed_file(PROVISIONER)

    async def scenario() -> None:
        await provision(running.url, seed, revocation_ttl_seconds=60.0, replicas=1)
        assert await replicas(running.url, bus) == dict.fromkeys(STREAMS, 1)
        await provision(running.url, seed, revocation_ttl_seconds=60.0, replicas=3)
        assert await replicas(running.url, bus) == dict.fromkeys(STREAMS, 3)

    asyncio.run(scenario())
