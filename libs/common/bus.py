"""NATS connection lifecycle and the JetStream stream every event goes to."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import structlog
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

log = structlog.get_logger("bus")

EVENTS_STREAM = "EVENTS"
EVENTS_SUBJECTS = ["events.>"]
# Nats-Msg-Id de-duplication covers relay retries within this window.
DUPLICATE_WINDOW_SECONDS = 600.0


def server_list(url: str) -> list[str]:
    """`NATS_URL` may name several servers of one cluster, comma-separated
    (`nats://nats-0:4222,nats://nats-1:4222`): the client tries them in turn and, once
    connected, also learns the cluster's other members from the server."""
    servers = [part.strip() for part in url.split(",") if part.strip()]
    if not servers:
        raise ValueError(f"no NATS server in {url!r}")
    return servers


async def connect(
    url: str,
    *,
    name: str,
    timeout: float = 30.0,
    reconnect_hooks: list[Callable[[], None]] | None = None,
    seed_file: Path | None = None,
) -> NATS:
    """Connect, retrying until `timeout`; once connected, reconnect forever.

    With `seed_file` (the bus user `name`'s nkey seed) the client authenticates as that user
    and takes its replies on that user's own inboxes, the only ones it may subscribe to.
    `reconnect_hooks` may grow after connecting: each is called after every reconnect.
    """
    hooks = reconnect_hooks if reconnect_hooks is not None else []

    async def on_disconnect() -> None:
        log.warning("nats_disconnected", client=name)

    async def on_reconnect() -> None:
        log.info("nats_reconnected", client=name)
        for hook in hooks:
            hook()

    async def on_error(exc: Exception) -> None:
        log.warning("nats_error", client=name, error=str(exc))

    credentials: dict[str, Any] = {}
    if seed_file is not None:
        credentials = {"nkeys_seed": str(seed_file), "inbox_prefix": inbox_prefix(name)}
    try:
        # nats-py retries the first connection itself (max_reconnect_attempts=-1 applies to it
        # too) and never gives up: the deadline is ours, so a service that cannot reach NATS
        # exits within its start-up timeout instead of hanging.
        return await asyncio.wait_for(
            nats.connect(
                server_list(url),
                name=name,
                **credentials,
                connect_timeout=2,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.25,
                disconnected_cb=on_disconnect,
                reconnected_cb=on_reconnect,
                error_cb=on_error,
            ),
            timeout=timeout,
        )
    except TimeoutError as exc:
        raise RuntimeError(f"cannot reach NATS at {url} within {timeout:g} s") from exc


# Messages a consumer could not handle after its attempts: kept with the error for an operator.
DEADLETTER_STREAM = "DEADLETTER"
DEADLETTER_SUBJECTS = ["deadletter.>"]
# Audit's signed checkpoints of its chain head, outside its database; nobody deletes or purges.
CHECKPOINT_STREAM = "AUDIT_CHECKPOINTS"
CHECKPOINT_SUBJECT = "audit.checkpoints"


def deadletter_subject(service: str, durable: str) -> str:
    """Where `service`'s consumer `durable` puts a message it gives up on."""
    return f"deadletter.{service}.{durable}"


async def await_provisioned_streams(js: JetStreamContext, *, timeout: float) -> None:
    """Wait until the provisioner has made the streams (services may not create them)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            await js.stream_info(EVENTS_STREAM)
            return
        except NotFoundError as exc:
            if loop.time() > deadline:
                raise RuntimeError(
                    f"stream {EVENTS_STREAM} does not exist: run `onbehalf nats provision`"
                ) from exc
        await asyncio.sleep(0.2)  # back-off while the provisioner works


def inbox_prefix(user: str) -> str:
    """Each bus user takes replies on its own inboxes, so nobody reads another's replies."""
    return f"_INBOX.{user}"
