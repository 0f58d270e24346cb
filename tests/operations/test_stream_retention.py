"""The EVENTS stream's retention limits (age and bytes) come from the settings, and provisioning
again applies changed ones (docs/operations.md, "Retention of the EVENTS stream")."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from libs.common.bus import EVENTS_STREAM
from libs.common.bus_permissions import PROVISIONER
from libs.common.settings import ServiceSettings
from onbehalf.nats_setup import BusSecrets, Retention, connect_as, init_bus_secrets, provision
from onbehalf.stack import NatsServer, start_nats


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[tuple[NatsServer, BusSecrets]]:
    bus = init_bus_secrets(tmp_path / "secrets")
    server = start_nats(tmp_path / "nats", config=bus.server_config)
    try:
        yield server, bus
    finally:
        server.stop()


async def limits(url: str, bus: BusSecrets) -> tuple[float, int]:
    nc = await connect_as(url, bus, PROVISIONER)
    try:
        config = (await nc.jetstream().stream_info(EVENTS_STREAM)).config
        return config.max_age or 0.0, config.max_bytes or 0
    finally:
        await nc.close()


def test_retention_comes_from_the_settings_and_provisioning_again_changes_it(
    nats: tuple[NatsServer, BusSecrets], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, bus = nats
    seed = bus.seed_file(PROVISIONER)
    monkeypatch.setenv("ONBEHALF_EVENTS_MAX_AGE_SECONDS", "86400")
    monkeypatch.setenv("ONBEHALF_EVENTS_MAX_BYTES", str(64 * 1024**2))
    assert Retention.from_settings() == Retention(86400.0, 64 * 1024**2)

    async def scenario() -> None:
        await provision(server.url, seed, revocation_ttl_seconds=60.0)
        assert await limits(server.url, bus) == (86400.0, 64 * 1024**2)
        await provision(
            server.url, seed, revocation_ttl_seconds=60.0, retention=Retention(3600.0, 1024**2)
        )
        assert await limits(server.url, bus) == (3600.0, 1024**2)
        # 0: no limit (JetStream reports no age and -1 bytes).
        await provision(server.url, seed, revocation_ttl_seconds=60.0, retention=Retention(0, 0))
        assert await limits(server.url, bus) == (0.0, -1)

    asyncio.run(scenario())


def test_the_defaults_are_a_week_and_ten_gibibytes_and_an_age_below_the_dedup_window_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("ONBEHALF_EVENTS_MAX_AGE_SECONDS", "ONBEHALF_EVENTS_MAX_BYTES"):
        monkeypatch.delenv(name, raising=False)
    settings = ServiceSettings()
    assert (settings.events_max_age_seconds, settings.events_max_bytes) == (604800.0, 10 * 1024**3)
    with pytest.raises(ValueError, match="de-duplication window"):
        Retention(60.0, 0).check()
