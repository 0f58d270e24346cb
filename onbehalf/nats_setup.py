"""The bus's secrets and shape: an nkey per user, the server's configuration, streams provisioned."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nkeys
import typer
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig

from libs.common.bus import (
    CHECKPOINT_STREAM,
    CHECKPOINT_SUBJECT,
    DEADLETTER_STREAM,
    DEADLETTER_SUBJECTS,
    DUPLICATE_WINDOW_SECONDS,
    EVENTS_STREAM,
    EVENTS_SUBJECTS,
    connect,
    inbox_prefix,
)
from libs.common.bus_permissions import OPERATOR, PROVISIONER, USERS, render_server_config
from libs.common.revocation import REVOCATION_BUCKET
from libs.common.settings import ServiceSettings

NATS_SECRETS_DIR = "nats"
SERVER_CONFIG = "nats.conf"
# In the data folder: the URL of the NATS `make run` started, and the port it chose once.
NATS_URL_FILE = "nats.url"
NATS_PORT_FILE = "nats.port"
DEFAULT_NATS_PORT = 4222


def _write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    path.chmod(0o600)


@dataclass(frozen=True)
class BusSecrets:
    """Where the nkey seeds and the server configuration of one installation live."""

    folder: Path

    def seed_file(self, user: str) -> Path:
        return self.folder / f"{user}.nk"

    @property
    def server_config(self) -> Path:
        return self.folder / SERVER_CONFIG


def init_bus_secrets(secrets_dir: Path, *, extra_config: str = "") -> BusSecrets:
    """Make an nkey for every bus user that has none (kept across restarts), then write the
    server configuration from the permission table (rewritten each time, so an upgrade that
    changes the table applies it). Folder 0700, files 0600."""
    secrets_dir.mkdir(parents=True, exist_ok=True)
    secrets_dir.chmod(0o700)
    secrets = BusSecrets(secrets_dir / NATS_SECRETS_DIR)
    secrets.folder.mkdir(exist_ok=True)
    secrets.folder.chmod(0o700)
    public: dict[str, str] = {}
    for user in USERS:
        path = secrets.seed_file(user)
        if not path.exists():
            _write_secret(path, nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER))
        public[user] = nkeys.from_seed(bytearray(path.read_bytes().strip())).public_key.decode()
    _write_secret(secrets.server_config, render_server_config(public, extra=extra_config).encode())
    return secrets


async def connect_as(url: str, secrets: BusSecrets, user: str, *, timeout: float = 10.0) -> NATS:
    """A client with `user`'s credentials (and its own reply inboxes)."""
    return await connect(url, name=user, timeout=timeout, seed_file=secrets.seed_file(user))


def stable_nats_port(data_dir: Path) -> int:
    """The port NATS listens on for this data folder: chosen once (4222, or a free one when
    4222 is taken, or ONBEHALF_NATS_PORT) and kept, so a restarted NATS is where clients look."""
    from onbehalf.stack import free_port, port_is_free

    kept = data_dir / NATS_PORT_FILE
    if "ONBEHALF_NATS_PORT" in os.environ:
        port = int(os.environ["ONBEHALF_NATS_PORT"])
    elif kept.exists():
        port = int(kept.read_text().strip())
    else:
        port = DEFAULT_NATS_PORT if port_is_free(DEFAULT_NATS_PORT) else free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    kept.write_text(f"{port}\n")
    return port


def nats_url_for(explicit: str | None, data_dir: Path) -> str:
    """The NATS a CLI command talks to: given (option or NATS_URL), else the one `make run`
    started for `data_dir`, else the default port on this machine."""
    if explicit:
        return explicit
    recorded = data_dir / NATS_URL_FILE
    if recorded.exists():
        return recorded.read_text().strip()
    return f"nats://127.0.0.1:{DEFAULT_NATS_PORT}"


def operator_seed(explicit: Path | None, data_dir: Path) -> Path | None:
    """The operator's seed for a CLI command: given, or the one `make run` made in `data_dir`."""
    if explicit is not None:
        return explicit
    found = BusSecrets(data_dir / "secrets" / NATS_SECRETS_DIR).seed_file(OPERATOR)
    return found if found.exists() else None


def operator_credentials(seed_file: Path | None) -> dict[str, Any]:
    """nats.connect keyword arguments for the read-only operator user (none: anonymous)."""
    if seed_file is None:
        return {}
    return {"nkeys_seed": str(seed_file), "inbox_prefix": inbox_prefix(OPERATOR)}


# Shared by every CLI command that talks to NATS.
NATS_CREDS_OPTION: Any = typer.Option(
    None,
    "--nats-creds",
    envvar="ONBEHALF_NATS_SEED_FILE",
    help="nkey seed file of the bus user to connect as (default: the operator's in the data dir)",
)
DATA_DIR_OPTION: Any = typer.Option(Path("data"), "--data-dir", help="Where `make run` keeps state")


@dataclass(frozen=True)
class Retention:
    """How long (seconds) and how much (bytes) the EVENTS stream keeps; 0 means no limit."""

    max_age_seconds: float
    max_bytes: int

    @classmethod
    def from_settings(cls, settings: ServiceSettings | None = None) -> Retention:
        settings = settings or ServiceSettings()
        return cls(settings.events_max_age_seconds, settings.events_max_bytes)

    def check(self) -> None:
        if 0 < self.max_age_seconds < DUPLICATE_WINDOW_SECONDS:
            raise ValueError(
                f"ONBEHALF_EVENTS_MAX_AGE_SECONDS={self.max_age_seconds:g} is shorter than the "
                f"de-duplication window ({DUPLICATE_WINDOW_SECONDS:g} s); use 0 or more"
            )


def stream_configs(*, replicas: int = 1, retention: Retention | None = None) -> list[StreamConfig]:
    retention = retention or Retention(0, 0)
    return [
        StreamConfig(
            name=EVENTS_STREAM,
            subjects=EVENTS_SUBJECTS,
            storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
            num_replicas=replicas,
            # Limits, not work-queue: every consumer (audit and the others) reads every event;
            # past either limit the oldest go (DiscardPolicy.OLD), consumed or not.
            max_age=retention.max_age_seconds or None,
            max_bytes=retention.max_bytes or None,
        ),
        StreamConfig(
            name=DEADLETTER_STREAM,
            subjects=DEADLETTER_SUBJECTS,
            storage=StorageType.FILE,
            num_replicas=replicas,
        ),
        StreamConfig(
            name=CHECKPOINT_STREAM,
            subjects=[CHECKPOINT_SUBJECT],
            storage=StorageType.FILE,
            # Nobody, not even the provisioner, removes a checkpoint once it is stored.
            deny_delete=True,
            deny_purge=True,
            num_replicas=replicas,
        ),
    ]


async def _ensure_replicas(js: JetStreamContext, stream: str, replicas: int) -> None:
    """An existing stream (or a bucket's stream) gets the replica count asked for, e.g. when a
    single server grew into a cluster; everything else about it stays as it is."""
    config = (await js.stream_info(stream)).config
    if config.num_replicas != replicas:
        config.num_replicas = replicas
        await js.update_stream(config)


async def _ensure_retention(js: JetStreamContext, retention: Retention) -> None:
    """An existing EVENTS stream gets the limits of the settings (provisioning again applies a
    changed ONBEHALF_EVENTS_MAX_AGE_SECONDS / _MAX_BYTES)."""
    config = (await js.stream_info(EVENTS_STREAM)).config
    age, size = config.max_age or 0, config.max_bytes if (config.max_bytes or 0) > 0 else 0
    if abs(age - retention.max_age_seconds) > 1e-6 or size != retention.max_bytes:
        config.max_age = retention.max_age_seconds or None
        config.max_bytes = retention.max_bytes or -1
        await js.update_stream(config)


async def provision(
    url: str,
    seed_file: Path,
    *,
    revocation_ttl_seconds: float,
    replicas: int = 1,
    retention: Retention | None = None,
) -> None:
    """Create every stream and the revocation bucket, as the one user allowed to (`seed_file`
    is the provisioner's nkey seed). `retention`: the EVENTS stream's limits (default: from
    the settings, ONBEHALF_EVENTS_MAX_AGE_SECONDS and ONBEHALF_EVENTS_MAX_BYTES)."""
    retention = retention or Retention.from_settings()
    retention.check()
    nc = await connect(url, name=PROVISIONER, timeout=10.0, seed_file=seed_file)
    try:
        js = nc.jetstream()
        for config in stream_configs(replicas=replicas, retention=retention):
            try:
                await js.stream_info(config.name or "")
            except Exception:
                await js.add_stream(config)
            else:
                await _ensure_replicas(js, config.name or "", replicas)
        await _ensure_retention(js, retention)
        try:
            await js.key_value(REVOCATION_BUCKET)
        except Exception:
            await js.create_key_value(
                bucket=REVOCATION_BUCKET,
                ttl=revocation_ttl_seconds,
                history=1,
                replicas=replicas,
            )
        else:
            await _ensure_replicas(js, f"KV_{REVOCATION_BUCKET}", replicas)
    finally:
        await nc.close()


def provision_sync(
    url: str, secrets: BusSecrets, *, revocation_ttl_seconds: float, replicas: int = 1
) -> None:
    asyncio.run(
        provision(
            url,
            secrets.seed_file(PROVISIONER),
            revocation_ttl_seconds=revocation_ttl_seconds,
            replicas=replicas,
        )
    )
