"""NATS connection lifecycle and the JetStream stream every event goes to."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import nats
import structlog
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import NotFoundError

log = structlog.get_logger("bus")

EVENTS_STREAM = "EVENTS"
EVENTS_SUBJECTS = ["events.>"]
# Nats-Msg-Id de-duplication covers relay retries within this window.
DUPLICATE_WINDOW_SECONDS = 600.0


async def connect(
    url: str,
    *,
    name: str,
    timeout: float = 30.0,
    reconnect_hooks: list[Callable[[], None]] | None = None,
) -> NATS:
    """Connect, retrying until `timeout`; once connected, reconnect forever.

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

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await nats.connect(
                url,
                name=name,
                connect_timeout=2,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.25,
                disconnected_cb=on_disconnect,
                reconnected_cb=on_reconnect,
                error_cb=on_error,
            )
        except Exception as exc:  # nats raises several unrelated types for "not there yet"
            if loop.time() > deadline:
                raise RuntimeError(f"cannot reach NATS at {url}: {exc}") from exc
            await asyncio.sleep(0.2)


async def ensure_events_stream(js: JetStreamContext) -> None:
    config = StreamConfig(
        name=EVENTS_STREAM,
        subjects=EVENTS_SUBJECTS,
        storage=StorageType.FILE,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
    )
    try:
        await js.stream_info(EVENTS_STREAM)
    except NotFoundError:
        try:
            await js.add_stream(config)
        except Exception:
            # Another service created it between our two calls.
            await js.stream_info(EVENTS_STREAM)


# Messages a consumer could not handle after its attempts: kept with the error for an operator.
DEADLETTER_STREAM = "DEADLETTER"
DEADLETTER_SUBJECTS = ["deadletter.>"]
# Audit's signed checkpoints of its chain head, outside its database; nobody deletes or purges.
CHECKPOINT_STREAM = "AUDIT_CHECKPOINTS"
CHECKPOINT_SUBJECT = "audit.checkpoints"


def deadletter_subject(service: str, durable: str) -> str:
    """Where `service`'s consumer `durable` puts a message it gives up on."""
    return f"deadletter.{service}.{durable}"


async def ensure_streams(js: JetStreamContext) -> None:
    """Every stream the system uses (the KV bucket is made in `revocation`)."""
    await ensure_events_stream(js)
    for config in (
        StreamConfig(
            name=DEADLETTER_STREAM, subjects=DEADLETTER_SUBJECTS, storage=StorageType.FILE
        ),
        StreamConfig(
            name=CHECKPOINT_STREAM,
            subjects=[CHECKPOINT_SUBJECT],
            storage=StorageType.FILE,
            deny_delete=True,
            deny_purge=True,
        ),
    ):
        try:
            await js.stream_info(config.name or "")
        except NotFoundError:
            try:
                await js.add_stream(config)
            except Exception:
                await js.stream_info(config.name or "")
