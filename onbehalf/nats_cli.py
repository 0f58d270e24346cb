"""`onbehalf nats`: make the bus's credentials and server configuration, and provision its streams."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.console import Console

from libs.common.bus_permissions import PROVISIONER, USERS
from libs.common.settings import ServiceSettings
from libs.common.signing import write_event_keys
from onbehalf.nats_setup import NATS_SECRETS_DIR, BusSecrets, init_bus_secrets, provision
from onbehalf.stack import SERVICES

nats_app = typer.Typer(no_args_is_help=True, help=__doc__, add_completion=False)
console = Console()


@nats_app.command("init")
def init(
    data_dir: Path = typer.Option(Path("data"), "--data-dir", help="Where the secrets go"),
) -> None:
    """An nkey per bus user and each service's event-signing key (kept if present; files 0600),
    and nats.conf with every user's permissions (rewritten from the permission table)."""
    secrets_dir = data_dir / "secrets"
    bus = init_bus_secrets(secrets_dir)
    public_keys = write_event_keys(secrets_dir, SERVICES)
    console.print(f"nats-server configuration: {bus.server_config}  (nats-server -js -c ...)")
    for user in USERS:
        console.print(f"  {user:<12} {bus.seed_file(user)}")
    console.print(f"event public keys: {public_keys}")


@nats_app.command("provision")
def provision_command(
    nats_url: str = typer.Option(
        "nats://127.0.0.1:4222", "--nats-url", envvar="NATS_URL", help="NATS with JetStream"
    ),
    nats_creds: Path | None = typer.Option(
        None, "--nats-creds", help="The provisioner's nkey seed (default: from the data dir)"
    ),
    data_dir: Path = typer.Option(Path("data"), "--data-dir", help="Where `init` put the secrets"),
    replicas: int = typer.Option(
        1,
        "--replicas",
        min=1,
        envvar="ONBEHALF_STREAM_REPLICAS",
        help="Stream and bucket replicas (3 on a cluster)",
    ),
) -> None:
    """Create the streams and the revocation bucket as the provisioner (the only user allowed)."""
    seed = nats_creds or BusSecrets(data_dir / "secrets" / NATS_SECRETS_DIR).seed_file(PROVISIONER)
    ttl = float(ServiceSettings().acting_session_max_seconds)
    asyncio.run(provision(nats_url, seed, revocation_ttl_seconds=ttl, replicas=replicas))
    console.print(f"provisioned on {nats_url}")
